# Palermo: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PALERMO_DATA_DIR ?= $(CURDIR)/data

.PHONY: run test check install lint typecheck importlint db-check unit test-sqlite test-postgresql bench clean

# The suite runs in WORKERS processes (pytest-xdist), each with its own databases; WORKERS=0
# runs it in this process. TESTS (or T) narrows a run to some paths or node ids:
#   make test-sqlite T=tests/integration/test_cases.py
WORKERS ?= 2
TESTS ?= $(T)
PYTEST := $(BIN)/pytest -q -p no:cacheprovider -n $(WORKERS) --dist loadgroup --durations=20
# Coverage is gathered by pytest-cov in every worker and appended across both databases; the
# gate (fail_under in pyproject.toml) is applied once, on the combined figure, by `make test`.
COVERAGE := --cov --cov-append --cov-report= --cov-fail-under=0

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/uv pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## make run: an embedded node on SQLite with demo participants: API, worker and scheduler.
run: $(STAMP)
	$(BIN)/palermo dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

importlint: $(STAMP)
	$(BIN)/lint-imports

## make db-check: migrate a scratch SQLite and PostgreSQL database to head, then `alembic check`.
db-check: $(STAMP)
	$(BIN)/python -m tests.support.db_check

test-sqlite: $(STAMP)
	PALERMO_TEST_DB=sqlite $(PYTEST) $(COVERAGE) $(or $(TESTS),tests)

test-postgresql: $(STAMP)
	PALERMO_TEST_DB=postgresql $(PYTEST) $(COVERAGE) $(or $(TESTS),tests/integration tests/unit/broker --ignore tests/integration/test_dev_node.py)

## make check: the quick inner loop: lint, types, import contracts and the unit tests on SQLite.
check: $(STAMP)
	$(MAKE) lint typecheck importlint
	PALERMO_TEST_DB=sqlite $(PYTEST) $(or $(TESTS),tests/unit)

## make test: every gate, then the whole suite on SQLite and the database suite on PostgreSQL.
test: $(STAMP)
	rm -f .coverage .coverage.*
	$(MAKE) lint typecheck importlint db-check
	$(MAKE) test-sqlite test-postgresql
	$(BIN)/coverage report

bench: $(STAMP)
	$(BIN)/python -m bench.ingress

clean:
	rm -rf $(VENV) data .coverage .coverage.* .mypy_cache .ruff_cache .pytest_cache
