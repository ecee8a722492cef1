# Switchyard: `make run` starts everything on a laptop, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
# Where `make run` serves the site, e.g. `make run ADDRESS=127.0.0.1:8001`.
ADDRESS ?= 127.0.0.1:8000
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-sqlite test-postgres lint chaos chaos-hosts scale bench bench-quick clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# The development stack runs with DEBUG on (plain HTTP cookies, debug pages). `exec`, so
# that on Ctrl-C / SIGTERM make waits for devstack to stop every process (a shell in
# between would die at once, and make return while the stack is still stopping).
run: $(STAMP)
	DEBUG=$${DEBUG:-true} exec $(BIN)/python manage.py devstack --address $(ADDRESS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

test: lint
	$(BIN)/python -m tests.run_suite

test-sqlite: $(STAMP)
	$(BIN)/python -m tests.run_suite --only sqlite

test-postgres: $(STAMP)
	$(BIN)/python -m tests.run_suite --only postgres

# The chaos suite at full size: 1,000 jobs through worker kills (`make test` sends 200),
# then Redis, PostgreSQL and beat failures; on SQLite, then PostgreSQL (one at a time). CHAOS_LONG adds
# lost workers at the default threshold; a three-node RabbitMQ cluster with quorum queues
# runs here too (marker hosts_full). See docs/reliability.md.
chaos: $(STAMP)
	CHAOS_JOBS=1000 CHAOS_LONG=1 $(BIN)/python -m tests.run_suite --serial tests/reliability -m chaos

# Scenarios at full scale, left out of `make test` (a pipeline's 1,000-step fan-out).
scale: $(STAMP)
	$(BIN)/python -m tests.run_suite --only postgres -m scale

# docker-compose.yml's services as separate hosts (a network namespace each; needs root),
# every scenario of issue 14 at full size: `make test` runs short versions of some.
# PostgreSQL pass only (the db host is PostgreSQL anyway). See docs/reliability.md.
chaos-hosts: $(STAMP)
	HOSTS_SCALE=full $(BIN)/python -m tests.run_suite --only postgres tests/reliability -m hosts

# Benchmarks (not part of `make test`): each starts its own Redis and PostgreSQL and
# rewrites its section of docs/performance.md. bench-quick takes minutes, bench hours.
bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf var/test-* .pytest_cache
