"""The Trabalho 2 control appendix (book/controle_trabalho2.md) trains the chapter's own networks."""
from __future__ import annotations

import ast

import pytest

from livro import book

COPIED = ["residual_block", "create_residual_model", "create_deep_residual_model"]


def functions(chapter: str) -> dict[str, str]:
    """The source of every function a chapter's code cells define, by name."""
    found = {}
    for cell in book.read_source(chapter).cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                found[node.name] = ast.get_source_segment(cell.source, node)
    return found


@pytest.mark.parametrize("name", COPIED)
def test_the_appendix_trains_the_networks_of_trabalho2(name):
    chapter, appendix = functions("trabalho2"), functions("controle_trabalho2")
    assert name in chapter and name in appendix, f"{name} is missing from one of the two chapters"
    assert appendix[name] == chapter[name], (
        f"book/controle_trabalho2.md's {name} differs from book/trabalho2.md's: copy the chapter's "
        "function again (the control must train the same network) and re-execute the appendix")
