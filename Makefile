# Everything installs into .venv. torch is pinned first so pip never pulls a CUDA build:
# on this machine 2.13.0 is a CPU wheel on local disk.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install system-deps test demo lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

# Debian packages the tests and the demo need (audio renderers, sample libraries).
system-deps:
	@true

test: install
	$(BIN)/pytest -q tests

demo: install
	$(BIN)/python -m usad.demo

lint: install
	$(BIN)/ruff check usad export quantize bench tests

clean:
	rm -rf $(VENV) build *.egg-info
