# Two entry points that work on a fresh machine with no GPU.
PY ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip
# torch is pinned to the CPU build that lies on disk here; an open range would pull a CUDA build.
TORCH_PIN := torch==2.13.0

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e '.[test]'
	touch $@

.PHONY: demo test
demo: $(VENV)/.installed
	$(VENV)/bin/python examples/demo.py

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -n 2 tests
