"""Sphinx extension for what the reader sees: Portuguese interface, numbered exercises, decimal comma.

``_config.yml`` loads it (``sphinx.local_extensions``) when ``scripts/build.py`` builds the book:

* the interface strings that the themes leave in English (pydata-sphinx-theme has no Portuguese
  catalogue) are translated by a fallback catalogue (``INTERFACE``), the version switcher by a
  template (``livro/templates``), myst-nb's code toggles by ``TOGGLE``; ``livro/static/livro.css``
  keeps the version switcher on the article's header line, ``livro.js`` relabels the solutions'
  toggle buttons;
* an exercise labelled ``<chapter>-exN`` is titled "Exercício N" and its solution "Solução do
  Exercício N" (sphinx-exercise would number across the book; the chapters use ``:nonumber:``);
* numbers shown in prose, glued values and Markdown outputs get a decimal comma
  (``decimal_comma``), glued booleans read sim/não (``glued_text``); code, code outputs and math
  keep the dot, and ``results/`` keeps the raw values.
"""
from __future__ import annotations

import gettext
import hashlib
import re
from pathlib import Path

from docutils import nodes

# English strings of pydata-sphinx-theme and sphinx-book-theme that have no pt_BR translation.
INTERFACE = {
    "Skip to main content": "Pular para o conteúdo",
    "Back to top": "Voltar ao topo",
    "Search": "Buscar",
    "Search...": "Buscar…",
    "Search the docs ...": "Buscar no livro…",
    "Error": "Erro",
    "Please activate JavaScript to enable the search functionality.":
        "Ative o JavaScript para usar a busca.",
    "Breadcrumb": "Trilha de navegação",
    "Home": "Início",
    "On this page": "Nesta página",
    "previous page": "página anterior",
    "previous": "anterior",
    "next page": "próxima página",
    "next": "próxima",
    "Collapse Sidebar": "Recolher a barra lateral",
    "Expand Sidebar": "Expandir a barra lateral",
    "Section Navigation": "Navegação da seção",
    "Site navigation": "Navegação do livro",
    "Color mode": "Tema de cores",
    "Light": "Claro",
    "Dark": "Escuro",
    "System Settings": "Como no sistema",
    "Version warning": "Aviso de versão",
    "Announcement": "Aviso",
    "Click to expand": "Clique para expandir",
    "Click to collapse": "Clique para recolher",
    "Toggle primary sidebar": "Mostrar ou ocultar o índice do livro",
    "Toggle secondary sidebar": "Mostrar ou ocultar o índice da página",
    "Main": "Principal",
    "Page": "Página",
}

# myst-nb's collapsed code cells: "Mostrar {type}" with {type} one of these.
TOGGLE = {"source": "o código", "output": "a saída", "outputs": "a saída", "content": "a célula"}

_NUMBER = r"(?<![\w.,])(\d+)\.(\d+)(?=e[-+]?\d|(?!\w|\.\d))"


def decimal_comma(text: str) -> str:
    """``text`` with a decimal comma in each number: 0.9822 → 0,9822, [0.45, 0.55] → [0,45; 0,55].

    Version numbers (3.11.2), names (cifar10.npz, v2026.1) and thousands are left alone."""
    # an interval of decimals, [0.45, 0.55], gets a semicolon; a shape, [50000, 10], keeps its comma
    text = re.sub(r"\[(-?\d+(?:\.\d+)?), (-?\d+(?:\.\d+)?)\]",
                  lambda m: f"[{m[1]}; {m[2]}]" if "." in m[0] else m[0], text)
    return re.sub(_NUMBER, r"\1,\2", text)


def glued_text(text: str) -> str:
    """How a glued value reads on the page: decimal comma, and True/False as sim/não."""
    return {"True": "sim", "False": "não"}.get(text, decimal_comma(text))


class _Fallback(gettext.NullTranslations):
    def gettext(self, message):
        return INTERFACE.get(message, message)

    def ngettext(self, singular, plural, n):
        return self.gettext(singular if n == 1 else plural)


def add_interface_catalogue(app) -> None:
    """Make INTERFACE the last resort of Sphinx's catalogue, which the themes' templates use."""
    from sphinx import locale

    for key in (("general", "sphinx"), ("general", "booktheme")):
        translator = locale.translators.get(key)
        if translator is not None:
            translator.add_fallback(_Fallback())


def add_templates_and_style(app, config) -> None:
    """Our templates (livro/templates) before the themes', and livro/static/livro.css."""
    here = Path(__file__).parent
    config.templates_path.insert(0, str(here / "templates"))
    config.html_static_path.append(str(here / "static"))


def visit_hidden_cell(self, node) -> None:
    """myst-nb's collapsed code cell, with its prompts and label in Portuguese."""
    from html import escape

    def prompt(text: str) -> str:
        verb, _, kind = text.rpartition(" ")
        return f"{verb} {TOGGLE[kind]}" if kind in TOGGLE else text

    classes = " ".join(node["classes"])
    self.body.append(f'<details class="admonition hide {classes}">\n')
    self.body.append('<summary aria-label="Mostrar ou ocultar">\n')
    self.body.append(f'<p class="collapsed admonition-title">{escape(prompt(node["prompt_show"]))}</p>\n')
    self.body.append(f'<p class="expanded admonition-title">{escape(prompt(node["prompt_hide"]))}</p>\n')
    self.body.append("</summary>\n")


def exercise_number(label: str) -> str | None:
    """'modulo4-ex6' → '6'."""
    match = re.fullmatch(r"[\w-]+-ex(\d+)", label or "")
    return match.group(1) if match else None


KEEP_DOTS = (nodes.literal, nodes.literal_block, nodes.math, nodes.math_block, nodes.raw)


def skip(node) -> bool:
    """Text that keeps its dots: code, code outputs (literal blocks), math, raw HTML, web links."""
    while node is not None:
        if isinstance(node, KEEP_DOTS) or node.get("refuri", "").startswith("http"):
            return True
        node = node.parent
    return False


def setup(app):
    from sphinx.transforms.post_transforms import SphinxPostTransform
    from sphinx_exercise.nodes import exercise_node, exercise_title, solution_node

    class NumberExercises(SphinxPostTransform):
        """'Exercício' → 'Exercício N', 'Solução para' → 'Solução do' (before sphinx-exercise's titles)."""

        default_priority = 19

        def run(self, **kwargs):
            registry = getattr(self.env, "sphinx_exercise_registry", {})
            # solutions take their exercise's title from the registry's copy of the node
            exercises = [*self.document.findall(exercise_node),
                         *(entry["node"] for entry in registry.values() if isinstance(entry.get("node"), exercise_node))]
            for node in exercises:
                number = exercise_number(node.get("label"))
                title = node.children[0] if node.children else None
                if number and isinstance(title, exercise_title) and isinstance(title.children[0], nodes.Text):
                    text = title.children[0].astext()
                    if not text.endswith(f" {number}"):
                        title.replace(title.children[0], nodes.Text(f"{text} {number}"))
            for node in self.document.findall(solution_node):
                if exercise_number(node.get("target_label")):
                    node["title"] = "Solução do"

    class DecimalComma(SphinxPostTransform):
        """A decimal comma in the numbers of the reader's text (see decimal_comma), glued values
        included (they are pasted before the post-transforms run)."""

        default_priority = 900

        def run(self, **kwargs):
            for text in list(self.document.findall(nodes.Text)):
                if text.parent is None or skip(text.parent):
                    continue
                pasted = "pasted-text" in text.parent.get("classes", [])
                new = glued_text(str(text)) if pasted else decimal_comma(str(text))
                if new != str(text):
                    text.parent.replace(text, nodes.Text(new))

    from myst_nb.sphinx_ import HideCodeCellNode
    from myst_nb.sphinx_ import depart_HideCellInput

    app.add_node(HideCodeCellNode, override=True, html=(visit_hidden_cell, depart_HideCellInput))
    app.add_post_transform(NumberExercises)
    app.add_post_transform(DecimalComma)
    app.connect("builder-inited", add_interface_catalogue)
    app.connect("config-inited", add_templates_and_style)
    app.add_css_file("livro.css")
    app.add_js_file("livro.js", priority=900)  # after togglebutton.js
    # a change to this extension, its templates or its style rebuilds every page
    here = Path(__file__).parent
    files = [Path(__file__), *sorted((here / "templates").glob("*")), *sorted((here / "static").glob("*"))]
    version = int(hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:8], 16)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": version}
