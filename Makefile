# The README's two commands. Each creates the virtual environment if missing
# and installs the project (with its test extras) from pyproject.toml.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test docs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/promisesim run promisesim/examples/web_api.yaml --out demo-output

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

# The documentation site (MkDocs), built in strict mode: a broken reference or a docstring
# that does not parse fails the build. The notebooks run as part of it. Output: site/.
$(BIN)/.docs-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	touch $@

docs: $(BIN)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) demo-output site .cache
