# Two commands for a newcomer:  `make serve`  and  `make test`.
PYTHON ?= python
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
CONFIG ?= configs/quickstart.yml

.PHONY: serve test test-fast lint venv-serve venv-dev container-base clean

$(PY):
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 12), f"Python 3.12 is required, found {sys.version.split()[0]} (pyenv: .python-version selects 3.12)"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Stamp files so a second `make` does not reinstall; they are redone when pyproject.toml changes.
$(VENV)/.serve-installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[train,serve,client]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv-serve: $(VENV)/.serve-installed
venv-dev: $(VENV)/.dev-installed

## make serve: set up, train the quick-start model if the store has none, serve it on $(HOST):$(PORT)
serve: venv-serve
	@$(PY) -c 'import sys; from models_store import Store; sys.exit(0 if Store().models() else 1)' \
		|| $(PY) -m training.fit $(CONFIG)
	$(PY) -m serving --host $(HOST) --port $(PORT)

# The container test builds the Dockerfile with podman from a local Debian base (no registry is
# reachable): the tools and the base are installed once (as root), then this does nothing.
container-base:
	bash .ci/container-base.sh

## make lint: ruff on the whole tree, mypy on the packages named in pyproject.toml [tool.mypy]
lint: venv-dev
	$(PY) -m ruff check .
	$(PY) -m mypy

## make test: set up (the venv, podman and the container base), lint, and run the whole test suite
test: venv-dev container-base lint
	$(PY) -m pytest -q

## make test-fast: the fast tier while you work (about a minute): no fit, server process, training run or container
test-fast: venv-dev
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) runs .pytest_cache
