# Two entry points for a fresh machine: `make report` and `make test`.
# Each builds a local virtual environment in .venv (once) and installs jaxcost into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: report test lint clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

.stamp-install: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e '.[plot]'
	touch $@

.stamp-test: pyproject.toml .stamp-install
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

report: .stamp-install
	$(BIN)/jaxcost report
	@echo "jaxcost is installed in $(VENV): 'source $(BIN)/activate' puts the jaxcost command on your PATH"

test: .stamp-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .stamp-install .stamp-test
