"""Numbers typed in a chapter's prose: a result must come from the execution, not the keyboard.

A number may appear in a chapter's Markdown only as

* a glue role (``{glue:text}`key:.4f```), a MyST substitution (``{{ faixas }}``,
  ``{{ hist_key }}``) that ``scripts/build.py`` fills from recorded data
  (``livro/substitutions.py``), code, or math (formulas);
* part of an exercise statement (an ``{exercise}`` block restates the course's question);
* a documented value, labelled: the label is *documentad(o/a)*, *material*, *curso*,
  *enunciado*, *gabarito* or, in the case study, *relatório* or *equipe*. A sentence that
  states no value of the book (no glue, no substitution, no *livro*, *regenerado*, *nesta
  execução*, *obtido*) is labelled as a whole; otherwise the label covers the parenthesis it
  stands in and the words after it up to the end of the clause (``documentado: 0,3890``).
  A table cell is labelled by its column's header, a list item by the sentence that opens
  the list;
* a reference (Exercício 7, Ex. 7, treino 10, lote 256, stride 2, 10.ª época, the first
  column of a table of exercises), a name (CIFAR-10, MobileNetV2, L2, Conv2D), a shape or
  kernel size (3×3, 32 × 32), a list number;
* a number of the chapter's allow-list, ``ALLOWED``: settings and facts that the course fixes
  and no execution changes (epochs, batch sizes, data sizes, layer widths), each named.

``typed_numbers`` returns every other number with its sentence; tests/test_prose_numbers.py
fails on any, and on an allow-list entry no sentence needs. A number written in words
("cerca de três vezes") is out of the scanner's sight: the same rule applies to it.
"""
from __future__ import annotations

import re


def _allow(text: str) -> dict[str, str]:
    """``"number, number: what they are"`` lines → {number: what it is}."""
    found = {}
    for line in text.strip().splitlines():
        numbers, what = line.split(":", 1)
        found.update({n.strip(): what.strip() for n in numbers.split(";")})
    return found


# Settings and facts of each chapter that the course fixes and no execution changes.
# One line per meaning: "numbers separated by ';': what they are".
ALLOWED: dict[str, dict[str, str]] = {
    "modulo2": _allow("""
        1; 2; 3; 5; 8: strides, canais, saídas, filtros e épocas das arquiteturas e do treino do enunciado
        20; 100: superclasses e classes da CIFAR-100
        24: mapas somados nas alternativas (b) e (d) do Ex. 4
        25; 50: limiares (%) das alternativas do Ex. 10
        32; 64; 128; 256; 512; 1024: comprimentos, lados e filtros das arquiteturas do enunciado
        500: imagens de cada conjunto no perfil smoke
    """),
    "modulo3": _allow("""
        0; 1; 2; 3; 4; 5; 6; 7; 8; 9; 10: instâncias e rótulos do Ex. 1, classes do Ex. 3, épocas, lotes e canais do enunciado
        0,5: limiar de classificação da regressão logística
        0,02; 20; 50; 17; 202; 256: taxas, épocas, lotes e passos por época dos Exs. 7 e 8 do enunciado
        404; 102; 13: exemplos de treino e de teste e atributos da Boston Housing
        40: perdas por instância impressas no material do Ex. 1 (10 instâncias, 4 perdas)
        255; 64; 0,05; 0,8; 100; 800: pixels, filtros, SGD, épocas e imagens do Ex. 10 do enunciado
        0,99; 0,9: limiares da regra do capítulo para o Ex. 10 (e o da faixa do gabarito)
    """),
    "modulo4": _allow("""
        0; 1; 2: deslocamento e escala iniciais da normalização; profundidade da árvore do Ex. 1
        5; 6; 10; 12: épocas, neurônios, classes e camadas do enunciado; últimas 10 épocas
        20; 60: exemplos por classe e imagens do Ex. 2 do enunciado
        404; 102; 13: imóveis de treino e de teste e atributos da Boston Housing
        32; 64; 256: lotes do enunciado; filtros da última convolução; imagens da conferência das características
        14 999; 15 000; 19 999: o corte de treino e validação do enunciado (30 % e 10 % do treino)
        1 000; 1 280; 1,0: classes da ImageNet, características e largura (alpha) da MobileNetV2
    """),
    "trabalho2": _allow("""
        0; 1; 9; 10; 255: intervalos dos pixels e rótulos do CIFAR-10; dropout_rate 0; 10 classes
        60 000; 50 000; 10 000; 3 072: imagens e componentes de uma imagem do CIFAR-10
        100; 256; 20; 0.2: épocas, lote e taxa de dropout (em % e em fração) do enunciado
        2; 4; 128: blocos residuais das redes e unidades do segundo bloco do enunciado
        1 024; 500: imagens de treino e de teste do perfil smoke
    """),
    "controle_trabalho2": _allow("""
        2: o nome do capítulo de que o apêndice é o controle (Trabalho 2)
        20: exemplos do exemplo em miniatura da ordem dos lotes
        0,0001; 256: taxa do Adam na rede base e lote do enunciado do Trabalho 2
    """),
    "estudo_de_caso": _allow("""
        1; 3; 4; 5; 8; 10: treinos da história, camadas, paciências e épocas dos callbacks do relatório
        25: passos por chamada (steps_per_execution)
        32; 64; 128; 256; 512: lote, filtros e neurônios das redes do relatório
        0,001; 0,25; 0,3; 0,4; 0,5: taxa, dropout e L2 das redes do relatório
        50; 70; 100: épocas dos treinos 1 e 4, 8 e 10 no relatório
        50 000; 40 000; 10 000; 313: imagens de treino, das partes e da subpasta; passos por época documentados
        0,84: centro da faixa do gabarito para o modelo final (as execuções documentadas)
        21; 46; 98; 99: épocas e acurácias (%) dos registros documentados; o limiar de 99 % do capítulo
    """),
}

DOCUMENTED = re.compile(r"documentad|\bmaterial\b|\bcurso\b|enunciado|relatório|equipe|gabarito", re.I)
REFERENCE = re.compile(
    r"\b(?:Exerc[íi]cios?|Ex\.|[Tt]reinos?|[Ss]eç(?:ão|ões)|[Ee]xperimentos?|[Bb]locos?|[Ss]ementes?)"
    r"\s+\d+(?:\s*(?:,|e|a|ou|–|-)\s*\d+)*"
    r"|\b\d+\.[ªº]|\bMobileNetV2\b|\bInception\s*V1\b|\bResNet\d*\b|\bCIFAR-1?\d0\b"
    r"|\bFashion-MNIST\b|\bKeras\s+[23]\b|\bTensorFlow\s+2\b|\bPython\s+3\b|\bv[123]\b"
    r"|\bconv\d\w*|\bConv[123]D\b|\b[LC]\d\b|\b0-1\b|\b[123]D\b|\bfloat(?:16|32|64)\b|\btop-\d\b"
    r"|\b(?:[Ss]tride|[Pp]asso|[Ll]otes?|convoluç(?:ão|ões)|camadas?|NumPy(?:\s+com)?|TensorFlow"
    r"|Keras\s+com)\s+\(?\d+(?:\s*(?:,|e|a)\s*\d+)*\)?"   # settings named in place: stride 2, lote 256
    r"|\(\d+,\s*\d+\)"                                # strides and shapes as tuples
    r"|\b\d+(?:\s*[×x]\s*\d+)+\b"                  # shapes and kernel sizes: 3×3, 32 × 32 × 3
    r"|^\s*\d+\.(?=\s|$)|\b\d+\.(?=\s+[a-zà-ú*])"  # list numbers
)
# Words that say a sentence states this book's own values: then a documented label covers only
# the parenthesis it stands in.
BOOK = re.compile(r"\{glue|\{\{|\blivro\b|regenerad|nesta execução|desta execução|esta execução|obtid", re.I)
NUMBER = re.compile(r"\d+(?:[ \u00a0]\d{3})*(?:[.,]\d+)?")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$]*\$", re.S)
# Recorded values (glue roles, substitutions): blanked to "{glue" + spaces, so that BOOK still
# sees them; roles, inline code and link targets: blanked. Lengths are kept (spans are positions).
_RECORDED = re.compile(r"\{glue(?::\w+)?\}`[^`]*`|\{\{[^}]*\}\}")
_NOT_PROSE = re.compile(r"\{\w+\}`[^`]*`|``[^`]*``|`[^`]*`|\]\([^)]*\)")
_FENCE = re.compile(r"^(`{3,}|:{3,})\s*(?:\{([\w-]+)\})?")
_SKIPPED_BLOCKS = {"code-cell", "exercise", "math", "code", "raw"}
_CLAUSE_END = re.compile(r"[);—]|\.\s")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÁÉÍÓÚÂÊÔÃÕÇ(*\[]|\d+\.\s)|\s(?=- )")


def _paragraphs(text: str):
    """(first line, paragraph text, table header) of the prose, outside skipped blocks."""
    lines = text.splitlines()
    start = lines.index("---", 1) + 1 if lines and lines[0] == "---" else 0
    stack: list[tuple[str, str]] = []
    current: list[str] = []
    header = None
    first = 0
    for number, line in enumerate(lines[start:], start + 1):
        stripped = line.strip()
        fence = _FENCE.match(stripped)
        skipping = any(kind in _SKIPPED_BLOCKS for _, kind in stack)
        if fence and stack and stripped == stack[-1][0]:
            stack.pop()
            fence = None
            stripped = ""
        elif fence and (fence.group(2) or not skipping):
            stack.append((fence.group(1), fence.group(2) or "code"))
            stripped = ""
        elif skipping:
            continue
        if not stripped.startswith("|"):
            header = None
        if (not stripped or stripped.startswith(("#", "+++")) or re.match(r"^\(.+\)=$", stripped)
                or re.match(r"^:[\w-]+:", stripped) or re.match(r"^\|[\s|:-]+\|$", stripped)):
            if current:
                yield first, " ".join(current), None
            current = []
            continue
        if stripped.startswith("|"):  # a table row: one sentence, read with its header
            if current:
                yield first, " ".join(current), None
                current = []
            if header is None:
                header = stripped
            yield number, stripped, (header if header != stripped else None)
            continue
        if not current:
            first = number
        current.append(stripped)
    if current:
        yield first, " ".join(current), None


def prose_sentences(text: str) -> list[tuple[int, str, str | None]]:
    """(first line of its paragraph, sentence, context), math left out. The context is a
    table row's header, or for a list item the sentence that introduces the list."""
    found = []
    intro = None  # the sentence ending in ":" that opens the current list
    for line, paragraph, header in _paragraphs(text):
        paragraph = MATH.sub(" ", paragraph)
        if paragraph.startswith("|"):
            found.append((line, paragraph, header))
            intro = None
            continue
        for sentence in filter(None, map(str.strip, _SENTENCE_END.split(paragraph))):
            is_item = sentence.startswith("- ")
            found.append((line, sentence, intro if is_item else None))
            if not is_item:
                intro = sentence if sentence.endswith(":") else None
    return found


def _table_cells(row: str, header: str | None) -> str:
    """A table row without its documented columns (those whose header says so) and, in a
    table of exercises or trainings, without the first column (their numbers)."""
    cells = row.strip().strip("|").split("|")
    heads = header.strip().strip("|").split("|") if header else []
    keep = []
    for index, cell in enumerate(cells):
        head = heads[index] if index < len(heads) else ""
        if DOCUMENTED.search(head) or (index == 0 and re.match(r"\s*(?:Ex\.|exercício|treino)\s*$", head, re.I)):
            continue
        keep.append(cell)
    return "|" + "|".join(keep) + "|"


def _documented_spans(sentence: str) -> list[tuple[int, int]]:
    """Where a documented label reaches: the whole sentence when it states no value of the book;
    otherwise the parenthesis that holds the label, or the text just around the label."""
    if not DOCUMENTED.search(sentence):
        return []
    if not BOOK.search(sentence):
        return [(0, len(sentence))]
    spans = [m.span() for m in re.finditer(r"\([^()]*\)", sentence) if DOCUMENTED.search(m.group())]
    for label in DOCUMENTED.finditer(sentence):  # "documentado: 0,3890", up to the clause's end
        stop = _CLAUSE_END.search(sentence, label.end())
        book_word = BOOK.search(sentence, label.end())
        ends = [label.end() + 80] + [m.start() for m in (stop, book_word) if m]
        spans.append((label.start(), min(ends)))
    return spans


def typed_numbers(chapter: str, text: str, used: set | None = None) -> list[tuple[int, str, str]]:
    """(line, number, sentence) for each number typed in prose that no rule above allows;
    the allow-list's numbers met on the way are added to ``used``."""
    allowed = ALLOWED.get(chapter, {})
    used = set() if used is None else used
    found = []
    for line, sentence, context in prose_sentences(text):
        if sentence.startswith("|"):
            bare = _table_cells(sentence, context)
        elif context and DOCUMENTED.search(context) and not BOOK.search(sentence):
            continue  # a list item under a sentence that labels its values as documented
        else:
            bare = sentence
        bare = _RECORDED.sub(lambda m: "{glue".ljust(len(m.group())), bare)
        bare = _NOT_PROSE.sub(lambda m: " " * len(m.group()), bare)
        bare = REFERENCE.sub(lambda m: " " * len(m.group()), bare)
        spans = _documented_spans(bare)
        for match in NUMBER.finditer(bare):
            if any(lo <= match.start() < hi for lo, hi in spans):
                continue
            if match.group() in allowed:
                used.add(match.group())
            else:
                found.append((line, match.group(), sentence))
    return found
