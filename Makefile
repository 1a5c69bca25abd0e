# Redes Neurais e Arquiteturas Profundas — o livro executável
#   make book       builds the HTML from the committed executed chapters (sets up .venv if missing)
#   make test       runs the tests (smoke execution of every chapter, answer checks, book build)
#   make execute [CHAPTER=modulo3] [PROFILE=full|smoke] [FORCE=1] [JOBS=1]   (unchanged chapters are
#                   skipped; several chapters run in JOBS lanes at once, one core each, JOBS = cores by default)
#   make site [BASE_URL=/]   versioned site (each edition of edicoes.yml + latest, both editions) in _build/site
#   make answers    answer report from the committed outputs → _build/answers.json
#   make bench [CHAPTER=trabalho2]   training speed of each heavy exercise → results/bench.json
#   REQUIREMENTS=requirements-gpu.txt   (any target) sets .venv up with TensorFlow and JAX for CUDA
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CHAPTER ?=
PROFILE ?= full
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
REQUIREMENTS ?= requirements.txt
# Data directory: $LIVRO_DATA if set, else the offline mirror beside the repository if there is
# one, else nothing (the Keras downloads are used).
LIVRO_DATA ?= $(if $(wildcard ../shared/data/SHA256SUMS),$(abspath ../shared/data),)
export LIVRO_DATA

.PHONY: book site test execute answers bench env clean

env: $(VENV)/.installed

$(VENV)/.installed: $(REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
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

clean:
	rm -rf _build
