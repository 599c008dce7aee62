# Two entry points that work on a fresh machine with no GPU.
PY ?= python3
# torch is pinned to the CPU build that lies on disk here; an open range would pull a CUDA build.
TORCH_PIN := torch==2.13.0
# The suite runs on two Triton versions (CPU interpreter): .venv's (also the demo's) and the newest tested.
TRITON := 3.6.0
TRITON_NEXT := 3.7.1
VENV := .venv
VENV_NEXT := .venv-triton$(TRITON_NEXT)

define install
	$(PY) -m venv $(1)
	$(1)/bin/pip install -q --upgrade pip
	$(1)/bin/pip install -q $(TORCH_PIN) triton==$(2)
	$(1)/bin/pip install -q -e '.[test]'
	touch $@
endef

$(VENV)/.installed: pyproject.toml
	$(call install,$(VENV),$(TRITON))

$(VENV_NEXT)/.installed: pyproject.toml
	$(call install,$(VENV_NEXT),$(TRITON_NEXT))

.PHONY: demo test test-triton$(TRITON) test-triton$(TRITON_NEXT)
demo: $(VENV)/.installed
	$(VENV)/bin/python examples/demo.py

test: test-triton$(TRITON) test-triton$(TRITON_NEXT)

test-triton$(TRITON): $(VENV)/.installed
	$(VENV)/bin/python -m pytest -n 2 tests

test-triton$(TRITON_NEXT): $(VENV_NEXT)/.installed
	$(VENV_NEXT)/bin/python -m pytest -n 2 tests
