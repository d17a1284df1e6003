# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv with the interpreter named by PYTHON (3.11 or 3.12).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test lint bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/porchlight-op demo

serve: $(STAMP)
	$(BIN)/porchlight-op serve

test: $(STAMP)
	$(BIN)/pytest

# About 13 minutes on two cores; needs node and npm for the reference OP.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff format --check porchlight_op tests
	$(BIN)/ruff check porchlight_op tests
	$(BIN)/mypy porchlight_op

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
