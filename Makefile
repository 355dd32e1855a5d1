# Engagement Audiences: every job in one place. `make help` lists them.
# The two README commands: `make demo` (fresh machine -> audiences) and `make test`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# The interpreter that bootstraps .tools/ (uv's own venv). PYTHON given on the command line
# or in the environment (`rm -rf .venv && make setup PYTHON=/usr/bin/python3.12`) is also
# the interpreter of .venv/, passed to uv as a path: uv would read a bare `python3` as a
# version request, not as the one on the PATH.
PYTHON ?= python3
# Otherwise .venv/ gets the first Python 3.11 or 3.12 on the PATH whose core is linked into
# its executable (Debian's and Ubuntu's python3, python.org's) rather than loaded from
# libpython*.so (pyenv's default build, often first on the PATH): dbt's fixed cost per
# command is Python, and it runs about 14 % slower there (README, "Which Python"). None
# such (or no /proc to tell): uv's own choice, which fits pyproject's requires-python.
STATIC_CORE_PROBE := import sys; fits = (3, 11) <= sys.version_info[:2] < (3, 13); \
  core_shared = "libpython" in open("/proc/self/maps").read(); \
  print(sys.executable if fits and not core_shared else "")
VENV_PYTHON := $(if $(filter file,$(origin PYTHON)),\
  $$(for p in $$(type -ap python3.11 python3.12 python3 | awk '!seen[$$0]++'); do \
       found=$$("$$p" -c '$(STATIC_CORE_PROBE)' 2>/dev/null) && [ -n "$$found" ] \
       && { echo "$$found"; break; }; done; true),\
  $$(command -v $(PYTHON) || echo $(PYTHON)))

DEMO_DIR ?= build/demo-data
DEMO_PEOPLE ?= 10000
DEMO_DAYS ?= 90
DEMO_SEED ?= 7
# The demo's warehouse: the one file `make demo` replaces and `make clean` removes, this
# checkout's own. The other targets use AUDIENCES_DUCKDB_PATH when it is set.
DEMO_WAREHOUSE := warehouse.duckdb
export AUDIENCES_DUCKDB_PATH ?= $(DEMO_WAREHOUSE)
# Tests, benchmarks and mutation runs reach nothing beyond 127.0.0.1: dbt's anonymous usage
# events (docs.getdbt.com/reference/global-configs/usage-stats) stay off there. Whether a
# user's own builds send them stays the user's choice (DO_NOT_TRACK, dbt's own setting).
test-python test-spark bench bench-demo bench-load bench-sync mutate: export DO_NOT_TRACK = 1

.PHONY: help setup hooks demo demo-warehouse-reset demo-sync demo-data load build versions sync report test lint fix \
        typecheck test-python test-spark docs bench bench-demo bench-load bench-sync mutate clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(UV):
	@echo "==> bootstrapping uv $(UV_VERSION) into $(TOOLS)/"
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(BIN)/audiences: $(UV) pyproject.toml uv.lock
	@echo "==> installing the pinned toolchain into $(VENV)/ (uv sync --frozen)"
	@# --compile-bytecode: every dbt process the tests start imports ~1.5 s of modules; with
	@# PYTHONDONTWRITEBYTECODE set (as on our machines) nothing would ever cache their bytecode.
	@venv_python="$(strip $(VENV_PYTHON))"; \
	command=(env UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen --quiet --compile-bytecode \
	  $${venv_python:+--python "$$venv_python"}); \
	echo "$${command[*]}"; "$${command[@]}"
	@touch $@

setup: $(BIN)/audiences hooks ## Create .venv with the locked toolchain (uv, offline-safe pins)

hooks: $(BIN)/audiences ## Install the git pre-commit hook (.pre-commit-config.yaml) in this checkout
	@# Only in a main checkout and only once: linked worktrees share the main checkout's
	@# hooks, so installing from one would change every other worktree. A branch without
	@# the config still commits (--allow-missing-config). AUDIENCES_NO_HOOKS=1 skips this.
	@if [ "$${AUDIENCES_NO_HOOKS:-}" != 1 ] && git rev-parse --is-inside-work-tree >/dev/null 2>&1 \
	  && [ "$$(git rev-parse --git-dir)" = "$$(git rev-parse --git-common-dir)" ] \
	  && [ ! -e "$$(git rev-parse --git-path hooks)/pre-commit" ]; then \
	  $(BIN)/pre-commit install --allow-missing-config; \
	fi

demo-data: setup ## Write the demo data set to $(DEMO_DIR)
	rm -rf $(DEMO_DIR)
	$(BIN)/audiences demo-data --out $(DEMO_DIR) --people $(DEMO_PEOPLE) --days $(DEMO_DAYS) --seed $(DEMO_SEED)

load: setup ## Load $(DEMO_DIR) into the warehouse
	$(BIN)/audiences load webhooks $(DEMO_DIR)/webhooks
	$(BIN)/audiences load segment-events $(DEMO_DIR)/segment
	$(BIN)/audiences load orders $(DEMO_DIR)/orders

build: setup ## dbt build (seeds, models, data and unit tests)
	$(BIN)/dbt build --quiet --no-use-colors

versions: setup ## Check audience versions against their recorded fingerprints
	$(BIN)/audiences versions check

sync: setup ## Plan the Segment sync (dry run; set SEGMENT_WRITE_KEY and drop --dry-run to send)
	$(BIN)/audiences sync segment --dry-run

report: setup ## Print audience sizes
	$(BIN)/audiences report

REPORT_HTML ?= build/report.html

.PHONY: report-html
report-html: setup ## Write the HTML report (sizes, lift, volumes, syncs) to $(REPORT_HTML)
	$(BIN)/audiences report --out $(REPORT_HTML)

demo-sync: setup ## After `make demo`: send the plan to a local Segment-compatible receiver (free port), twice
	@# Port 0: the receiver takes a free port and prints its URL, so a busy port can never
	@# send the demo's events to whatever else listens there.
	@log=$$(mktemp); \
	  SEGMENT_WRITE_KEY=demo-write-key $(BIN)/python -m scripts.fakes.segment_receiver --port 0 >$$log & \
	  receiver=$$!; trap 'kill $$receiver 2>/dev/null; rm -f $$log' EXIT; \
	  url=; for _ in $$(seq 100); do \
	    url=$$(sed -n 's/^segment receiver listening on //p' $$log); \
	    if [ -n "$$url" ] || ! kill -0 $$receiver 2>/dev/null; then break; fi; sleep 0.1; \
	  done; \
	  if [ -z "$$url" ]; then echo "error: the local Segment receiver did not start" >&2; exit 1; fi; \
	  echo "==> local Segment receiver at $$url"; \
	  SEGMENT_WRITE_KEY=demo-write-key SEGMENT_SPACE_ID=spa_demo SEGMENT_HOST=$$url $(BIN)/audiences sync segment; \
	  echo "receiver: $$(curl -s $$url/control/stats)"; \
	  echo "==> the same sync again: nothing is sent twice"; \
	  SEGMENT_WRITE_KEY=demo-write-key SEGMENT_HOST=$$url $(BIN)/audiences sync segment

demo: setup ## Fresh machine -> demo data -> load -> dbt build -> sync plan -> sizes -> HTML report
	$(MAKE) --no-print-directory demo-warehouse-reset demo-data load build sync report report-html

# The demo starts from an empty warehouse, and never someone else's: the checkout's own
# warehouse.duckdb is deleted; an existing file that an exported AUDIENCES_DUCKDB_PATH names,
# or a non-DuckDB target already holding loaded files, stops the demo before it loads
# anything (scripts/demo_data/fresh_warehouse.py; DEMO_INTO_EXISTING=1 to load into the
# latter anyway).
demo-warehouse-reset:
	$(BIN)/python -m scripts.demo_data.fresh_warehouse $(DEMO_WAREHOUSE)

docs: setup ## dbt docs: models, tests, exposures and audience meta in target/static_index.html
	$(BIN)/dbt docs generate --static --quiet --no-use-colors
	@echo "docs: open target/static_index.html (one file), or run: $(BIN)/dbt docs serve"

lint: setup ## ruff check, ruff format --check, sqlfluff lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# a throwaway warehouse, so the dbt templater renders the same (non-incremental)
	@# branches whatever state the demo warehouse is in
	mkdir -p build && rm -f build/lint.duckdb
	AUDIENCES_DUCKDB_PATH=build/lint.duckdb $(BIN)/sqlfluff lint models --processes 2

typecheck: setup ## mypy on scripts/ (not yet part of lint: see README "Development")
	$(BIN)/mypy

fix: setup ## Apply ruff and sqlfluff fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	mkdir -p build && rm -f build/lint.duckdb
	AUDIENCES_DUCKDB_PATH=build/lint.duckdb $(BIN)/sqlfluff fix models --processes 2

# pytest in PYTEST_WORKERS xdist processes (0: in this one). Most tests wait on dbt, loader
# and server subprocesses, so two workers keep both cores of a 2-core machine busy. Work is
# handed out by test file, with the files of one session warehouse kept together
# (tests/work_units.py), so module and session builds are not made twice.
PYTEST_WORKERS ?= 2

test-python: setup ## pytest only (PYTEST_WORKERS=2 processes; 0 runs in one)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

test: setup lint versions test-python ## Everything CI runs: lint, version check, pytest (incl. dbt build)

SPARK_VENV := .spark-venv

$(SPARK_VENV)/bin/dbt: $(UV) spark/requirements.txt
	@echo "==> installing dbt-spark[session] + pyspark (~700 MB) into $(SPARK_VENV)/ (pinned: spark/requirements.txt)"
	rm -rf $(SPARK_VENV)
	UV_PYTHON_DOWNLOADS=never $(UV) venv --quiet --python $(PYTHON) $(SPARK_VENV)
	UV_PYTHON_DOWNLOADS=never $(UV) pip sync --quiet --python $(SPARK_VENV)/bin/python spark/requirements.txt
	@touch $@

test-spark: setup $(SPARK_VENV)/bin/dbt ## Build on Spark (session mode, Java 17) and compare memberships with DuckDB
	@command -v java >/dev/null || { echo "error: test-spark needs Java 17 (java on PATH)" >&2; exit 2; }
	$(BIN)/python -m scripts.spark_check

# A smaller run while iterating: make bench BENCH_ARGS="--people 50000 --days 120"
BENCH_ARGS ?= --people 200000 --days 365

bench: setup ## The loop end to end (load, dbt build, audiences, incremental, sync) vs floors; writes benchmarks/results.md
	$(BIN)/python -m scripts.bench.end_to_end $(BENCH_ARGS)

bench-demo: setup ## demo-data at 200k people x 365 days (>= 10 M events): time and peak RSS (printed)
	$(BIN)/python -m scripts.bench.demo_data

bench-load: setup ## Loader vs DuckDB read_json on 5 M webhook events in 10 files (printed)
	$(BIN)/python -m scripts.bench.load

bench-sync: setup ## Sync vs raw requests on 1 M members, 2 M messages (printed)
	$(BIN)/python -m scripts.bench.sync

mutate: setup ## Mutation testing (not in `make test`; ~2.5 h, benchmarks/mutation.md); MUTATE_ARGS='--python versions'
	$(BIN)/python -m scripts.mutation $(MUTATE_ARGS)

clean: ## Remove build output, this checkout's demo warehouse and caches
	@# The demo's own warehouse only: never the file an exported AUDIENCES_DUCKDB_PATH names.
	rm -rf build target logs .pytest_cache .ruff_cache \
	  $(DEMO_WAREHOUSE) $(DEMO_WAREHOUSE).wal $(DEMO_WAREHOUSE).tmp
