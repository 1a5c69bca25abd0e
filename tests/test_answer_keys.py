"""Answer keys are validated before use: each fault is one sentence naming file and line (issue 24).
The faults are injected into a copy of answers/ (book.ANSWERS is pointed at it)."""
from __future__ import annotations

import shutil

import pytest

from livro import book
from livro.integrity import BookError


@pytest.fixture
def answers(tmp_path, monkeypatch):
    copy = tmp_path / "answers"
    shutil.copytree(book.ANSWERS, copy)
    monkeypatch.setattr(book, "ANSWERS", copy)
    return copy


def edit(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


def line_of(path, text):
    return next(i for i, ln in enumerate(path.read_text().splitlines(), start=1) if text in ln)


def test_committed_keys_are_valid():
    for chapter in book.chapters():
        book.read_spec(chapter)
    book.read_deviations()


def test_duplicate_exercise_id(answers):
    """Before: the first ex8's checks were silently dropped (89 → 83 inside, all green)."""
    key = answers / "modulo3.yml"
    edit(key, "\n  ex7:\n", "\n  ex8:\n")
    first, second = line_of(key, "  ex8:"), [i for i, ln in enumerate(key.read_text().splitlines(), 1)
                                             if ln == "  ex8:"][1]
    with pytest.raises(BookError) as error:
        book.read_spec("modulo3")
    assert str(error.value) == (f"answers/modulo3.yml, line {second}: duplicate key 'ex8' (first at line "
                                f"{first}); YAML would keep only the last one and drop the first's checks")


def test_malformed_yaml(answers):
    """Before: an 82-line traceback that never named the file, and `make test` collected nothing."""
    key = answers / "modulo3.yml"
    edit(key, "        range: [0.4467, 0.4507]", "        range: [0.4467, 0.4507\n")
    with pytest.raises(BookError, match=r"^answers/modulo3.yml, line \d+: malformed YAML \("):
        book.read_spec("modulo3")
    import test_chapters

    monkey_rows = list(test_chapters.answer_rows())  # collection survives: one failing row names it
    assert any(isinstance(p.values[0], BookError) for p in monkey_rows)


def test_unknown_field(answers):
    key = answers / "modulo3.yml"
    edit(key, "        range: [0.4467, 0.4507]", "        rang: [0.4467, 0.4507]")
    line = line_of(key, "rang: [0.4467")
    with pytest.raises(BookError) as error:
        book.read_spec("modulo3")
    assert str(error.value).startswith(f"answers/modulo3.yml, line {line}: exercises.ex1.quantities[2]: ")
    assert "('rang' was unexpected)" in str(error.value)


def test_wrong_type_and_missing_check(answers):
    key = answers / "modulo3.yml"
    edit(key, "        range: [0.4467, 0.4507]", "        range: [0.4467, high]")
    with pytest.raises(BookError, match=r"line 19: exercises.ex1.quantities\[2\].range\[1\]: 'high' is not of type 'number'"):
        book.read_spec("modulo3")
    edit(key, "        range: [0.4467, high]", "        needs_data: cifar100")
    with pytest.raises(BookError, match="needs exactly one of range"):
        book.read_spec("modulo3")


def test_a_key_typo_says_the_key_may_be_wrong(answers):
    """Before: 'no value recorded; re-execute the chapter' (hours of CPU) when the key was wrong."""
    key = answers / "modulo3.yml"
    edit(key, "      - key: ex1_quadratica\n", "      - key: ex1_quadratca\n")
    rows = [r for r in book.check("modulo3") if r.quantity == "ex1_quadratca"]
    assert rows and rows[0].verdict == "missing"
    sentence = book.problem(rows[0])
    assert sentence.startswith("modulo3 ex1 (ex1_quadratca): results/modulo3.json records no value named "
                               f"ex1_quadratca; the key in answers/modulo3.yml (line {line_of(key, 'ex1_quadratca')}) "
                               "may be wrong (recorded keys: ex1_quadratica"), sentence
    assert sentence.endswith("otherwise re-execute the chapter.")


def test_deviations_are_read_strictly(answers):
    """answers/deviations.yml: entries are {reason, value, tolerance} (livro.book.DEVIATION_SCHEMA),
    read through the same duplicate-key loader as the answer keys."""
    devs = answers / "deviations.yml"
    devs.write_text('modulo4.ex8_train_acc: {reason: "Outro recorte da CIFAR-10 e outra biblioteca.", '
                    'value: 42.2067, tolerance: 0.5}\n')
    notes = {r.quantity: (r.verdict, r.note) for r in book.check("modulo4")}
    assert notes["ex8_train_acc"] == ("deviation", "Outro recorte da CIFAR-10 e outra biblioteca.")
    devs.write_text('modulo4.ex8_val_acc: "Mesma causa."\n')
    with pytest.raises(book.DeviationsError, match="each entry needs reason, value and tolerance"):
        book.read_deviations()
    devs.write_text('a.b: "x"\na.b: "y"\n')
    with pytest.raises(BookError, match=r"^answers/deviations.yml, line 2: duplicate key 'a.b' \(first at line 1\)"):
        book.read_deviations()
