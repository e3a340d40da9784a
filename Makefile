# Care Hub: the two commands of the quick start, and the checks behind them.
# `make demo` and `make test` each bootstrap .venv from nothing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: demo test lint typecheck bench clean system-packages postgres

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Packages the suite needs from the operating system (browser tests use Chromium).
system-packages:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null; \
	  else echo "chromium missing: install it with 'sudo apt-get install -y chromium chromium-driver'"; fi; }

# Start the local PostgreSQL cluster when it is installed but not answering.
postgres:
	@if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start || true; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; fi

demo: $(STAMP)
	$(BIN)/carehub demo

# The whole suite, then its 15 slowest tests and its time (the suite fails if a test leaves a process behind).
# Three workers on two cores: most of the suite's time is spent waiting on servers, browsers and subprocesses;
# --dist loadfile keeps each module's fixtures (a store built once, a served hub) in one worker.
PYTEST_ARGS ?= -q -n 3 --dist loadfile --durations=15 --durations-min=0.5

test: $(STAMP) system-packages postgres
	@start=$$(date +%s); \
	if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then \
	  echo "PostgreSQL answers: the suite runs on SQLite and PostgreSQL"; \
	  CAREHUB_TEST_DATABASE_URL=$(PG_URL) $(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	else echo "PostgreSQL is not answering: the suite runs on SQLite only"; $(BIN)/pytest $(PYTEST_ARGS); status=$$?; fi; \
	echo "suite time: $$(( $$(date +%s) - start )) s"; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check hub adapters mappings gazetteer edrms finance_link health_link tests bench

typecheck: $(STAMP)
	$(BIN)/mypy hub adapters mappings

bench: $(STAMP)
	$(BIN)/python bench/migrate.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
