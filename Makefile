# The two Quickstart commands are `make up` and `make test`; both create .venv and install the pinned
# dependencies first. `make up` runs everything as local processes (no Docker needed); `make test` also builds
# and runs the container images under docker compose (the container layer, `make test-containers`).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# `make up DETACH=1` returns once the stack is up; `make down` stops it.
DETACH ?=
PORT_BASE ?= 8085
# `make up INSTANCES=inventory=3,payments=2`: several instances of a service behind one front (docs/local-stack.md).
INSTANCES ?=

# CPython 3.11 formats tracebacks with ast.parse (for the ^^^ carets) using state shared across threads; two
# threads formatting at once can raise "SystemError: AST constructor recursion depth mismatch" (fixed in later
# releases). The in-process test consumers log exceptions from many threads, so tests run without carets.
export PYTHONNODEBUGRANGES := 1

.DEFAULT_GOAL := help
.PHONY: help install up down status test test-local test-containers test-unit test-integration test-e2e test-browser test-infra \
	test-reliability images-python test-images-python dlq backfill lint format lock clean

help:
	@echo "make up        run emulators + services in the foreground (Ctrl-C stops all); DETACH=1 to background;"
	@echo "               INSTANCES=inventory=3,... for several instances of a service behind one address"
	@echo "make down      stop a detached stack"
	@echo "make status    what the stack runs, whether it answers, restarts per service"
	@echo "make test      the whole test suite: test-local, then test-containers"
	@echo "make test-local        every layer on the local stack (processes; starts its own)"
	@echo "make test-containers   the images, built and run under docker compose (needs Docker)"
	@echo "make test-unit | test-integration | test-e2e | test-browser | test-infra | test-reliability   one layer"
	@echo "make test-images-python   test-local again on the container images' Python (e.g. python3.12)"
	@echo "make dlq ARGS=\"list\"   dead letters and failures: list | show ID | replay ID|--all | discard ID"
	@echo "make backfill ARGS=\"--dry-run\"   re-render images made under other IMAGE_* settings"
	@echo "make lint      ruff"
	@echo "make lock      re-pin constraints.txt from requirements-dev.in"

$(VENV)/.installed: requirements.in requirements-dev.in constraints.txt services/eventkit/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -r requirements-dev.in -e services/eventkit
	@touch $@

install: $(VENV)/.installed

up: install
	$(PY) -m stack up --port-base $(PORT_BASE) $(if $(DETACH),--detach,) $(if $(INSTANCES),--instances $(INSTANCES),)

down: install
	$(PY) -m stack down

status: install
	$(PY) -m stack status

# The whole suite: every layer against emulators and services as processes, then the images as shipped.
test: test-local test-containers

test-local: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Builds every image (docker compose build, as Cloud Build builds them), starts them with `up --wait`, runs
# tests/containers and the flows marked `compose` against them, then `down -v` (docs/containers.md).
test-containers: install
	$(PY) -m pytest --stack=compose $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: install
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

test-e2e: install
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

test-browser: install
	$(PY) -m pytest -m browser $(PYTEST_ARGS)

test-infra: install
	$(PY) -m pytest -m infra $(PYTEST_ARGS)

test-reliability: install
	$(PY) -m pytest -m reliability $(PYTEST_ARGS)

# The container images run the Python of services/Dockerfile's FROM line, newer than many machines' python3.
# This runs the whole suite on that Python, in its own venv (.venv-images), services included. The interpreter:
# pythonX.Y on PATH, else pyenv's copy (pyenv's shims answer only for the selected version), else IMAGES_PYTHON.
IMAGES_PYTHON_VERSION := $(shell sed -n 's/^FROM python:\([0-9.]*\)-slim.*/\1/p' services/Dockerfile | head -n1)
ifndef IMAGES_PYTHON
IMAGES_PYTHON = $(shell v=$(IMAGES_PYTHON_VERSION); python$$v -c '' 2>/dev/null && echo python$$v || \
	{ p=$$(pyenv prefix $$v 2>/dev/null) && echo $$p/bin/python$$v; } || echo python$$v)
endif

images-python:
	@echo $(IMAGES_PYTHON)

# (The container layer runs on that Python already: it is the images'.)
test-images-python:
	$(MAKE) test-local VENV=.venv-images PYTHON=$(IMAGES_PYTHON)

# Dead letters and permanent failures (docs/dead-letters.md), e.g. make dlq ARGS="replay --all".
dlq: install
	$(PY) -m dlq $(ARGS)

# Re-render the images recorded under other rendition settings (docs/images.md), in the running stack's images
# service environment, e.g. make backfill ARGS="--dry-run".
backfill: install
	$(PY) -m stack exec images -- $(abspath $(PY)) -m images.backfill $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Re-pin: a throwaway venv from the loose requirements, frozen into constraints.txt.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.in
	{ sed -n '1,3p' constraints.txt; .lock-venv/bin/pip freeze --exclude-editable | sort -f; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .lock-venv

clean:
	rm -rf $(VENV) .venv-images .local .pytest_cache .ruff_cache
