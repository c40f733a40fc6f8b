# Greenroom: `make run` starts everything locally, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest mutation check-deploy clean screenshots

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m portal.localrun

# The README's pictures: the demo (as `make run` starts it, in a temporary folder) in Chromium.
screenshots: $(STAMP)
	$(BIN)/python tools/screenshots.py

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# Mutation testing of the security-critical modules (tests/mutation_scope.py): long, so not part
# of `make test`. Fails under 90 % killed or on a survivor tests/MUTATION.md does not accept.
mutation: $(STAMP)
	$(BIN)/python tools/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf var
