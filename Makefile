# Redes Neurais e Arquiteturas Profundas — o livro executável
#   make book       builds the HTML from the committed executed chapters (sets up .venv if missing)
#   make test       runs the tests (smoke execution of every chapter, answer checks, book build)
#   make execute [CHAPTER=modulo3] [PROFILE=full|smoke] [FORCE=1] [JOBS=1]   (unchanged chapters are
#                   skipped; several chapters run in JOBS lanes at once, one core each, JOBS = cores by default)
#   make site [BASE_URL=/]   versioned site (each edition of edicoes.yml + latest, both editions) in _build/site
#   make check      the publishing gate: one sentence per stale chapter, forged output or unregistered
#                   out-of-range answer (make site and the Publish workflow run it first)
#   make answers    answer report from the committed outputs → _build/answers.json
#   make bench [CHAPTER=trabalho2]   training speed of each heavy exercise → results/bench.json
#   REQUIREMENTS=requirements-gpu.txt   (any target) sets .venv up with TensorFlow and JAX for CUDA
#   make lab        Jupyter Lab on the chapters' downloadable notebooks, in the reader's environment
#                   (.venv-leitor: requirements-reader.txt + this package, editable; not the CI lock)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CHAPTER ?=
PROFILE ?= full
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
REQUIREMENTS ?= requirements.txt
# Data directory: $LIVRO_DATA if set (empty: the Keras downloads), else the offline mirror's
# folder beside the repository if there is one (livro/data.py holds its checksums), else
# nothing (the Keras downloads are used).
LIVRO_DATA ?= $(if $(wildcard ../shared/data/.),$(abspath ../shared/data),)
export LIVRO_DATA
# CHAPTER, PROFILE and BASE_URL are data, never code: they reach the scripts through the environment,
# unexpanded by make and unparsed by the shell (no globbing), and the scripts reject anything that is
# not a chapter (a profile, a URL path).
unexport CHAPTER PROFILE BASE_URL
execute answers bench: export LIVRO_CHAPTERS = $(value CHAPTER)
execute: export LIVRO_PROFILE = $(value PROFILE)
site: export LIVRO_BASE_URL = $(or $(value BASE_URL),/)

.PHONY: book check site test execute answers bench env clean lab reader

env: $(VENV)/.installed

$(VENV)/.installed: $(REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	touch $@

book: env
	$(BIN)/python scripts/build.py

check: env
	$(BIN)/python scripts/build.py --check

site: env
	$(BIN)/python scripts/build.py --check
	$(BIN)/python scripts/site.py --base-url "$$LIVRO_BASE_URL"

execute: env
	set -f; $(BIN)/python scripts/execute.py $$LIVRO_CHAPTERS --profile "$$LIVRO_PROFILE" --jobs $(JOBS) $(if $(FORCE),--force,)

answers: env
	set -f; $(BIN)/python scripts/answers.py $$LIVRO_CHAPTERS

bench: env
	set -f; $(BIN)/python scripts/bench.py $$LIVRO_CHAPTERS

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
