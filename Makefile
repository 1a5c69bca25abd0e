# Redes Neurais e Arquiteturas Profundas — o livro executável
#   make book       builds the HTML from the committed executed chapters (sets up .venv if missing)
#   make test       runs the tests (smoke execution of every chapter, answer checks, book build)
#   make execute [CHAPTER=modulo3] [PROFILE=full|smoke] [FORCE=1] [JOBS=1]   (unchanged chapters are
#                   skipped; several chapters run in JOBS lanes at once, one core each, JOBS = cores by default)
#   make site [BASE_URL=/]   versioned site (every v* tag + latest, both editions) in _build/site
#   make answers    answer report from the committed outputs → _build/answers.json
#   make bench [CHAPTER=trabalho2]   training speed of each heavy exercise → results/bench.json
#   make lab        Jupyter Lab on the chapters' downloadable notebooks, in the reader's environment
#                   (.venv-leitor: requirements-reader.txt + this package, editable; not the CI lock)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CHAPTER ?=
PROFILE ?= full
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
# Data directory: $LIVRO_DATA if set, else the offline mirror beside the repository if there is
# one, else nothing (the Keras downloads are used).
LIVRO_DATA ?= $(if $(wildcard ../shared/data/SHA256SUMS),$(abspath ../shared/data),)
export LIVRO_DATA

.PHONY: book site test execute answers bench env clean lab reader

env: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

book: env
	$(BIN)/python scripts/build.py

site: env
	$(BIN)/python scripts/site.py --base-url $(or $(BASE_URL),/)

execute: env
	$(BIN)/python scripts/execute.py $(CHAPTER) --profile $(PROFILE) --jobs $(JOBS) $(if $(FORCE),--force,)

answers: env
	$(BIN)/python scripts/answers.py $(CHAPTER)

bench: env
	$(BIN)/python scripts/bench.py $(CHAPTER)

test: env
	$(BIN)/python -m pytest tests

# The reader's environment: what running a chapter needs (tensorflow, jax, jupyterlab), with wheels
# for Linux x86-64/aarch64, macOS arm64 and Windows; `make env`'s lock is CI's (tensorflow-cpu, tools).
READER_VENV := .venv-leitor
reader: $(READER_VENV)/.installed

$(READER_VENV)/.installed: requirements-reader.txt pyproject.toml
	$(PYTHON) -m venv $(READER_VENV)
	$(READER_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-reader.txt -e .
	touch $@

lab: reader
	$(READER_VENV)/bin/python scripts/notebooks.py --edition $(or $(EDITION),full) --out _build/notebooks
	$(READER_VENV)/bin/jupyter lab _build/notebooks/$(or $(EDITION),full)

clean:
	rm -rf _build
