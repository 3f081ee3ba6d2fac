# Two entry points for a fresh machine: `make report` and `make test` (`make docs` builds the documentation).
# Each builds a local virtual environment in .venv (once) and installs jaxcost into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: report test docs lint clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

.stamp-install: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e '.[plot]'
	touch $@

.stamp-test: pyproject.toml .stamp-install
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

.stamp-docs: pyproject.toml .stamp-install
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

report: .stamp-install
	$(BIN)/jaxcost report
	@echo "jaxcost is installed in $(VENV): 'source $(BIN)/activate' puts the jaxcost command on your PATH"

# warnings are errors: a broken link or a page outside the table of contents fails the build
docs: .stamp-docs
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "documentation: docs/_build/html/index.html"

test: .stamp-test docs
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2

clean:
	rm -rf $(VENV) .stamp-install .stamp-test .stamp-docs docs/_build
