# Two commands: `make run` (a full-size synthetic year through the Prefect flow into DuckDB)
# and `make test`. Both create .venv and install the project first when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean lock

LOCK := requirements.lock

# The environment is the lock file, exactly: a fresh .venv, every package at its locked version and hash, then the
# project itself (editable, built with the locked setuptools). tests/test_environment.py fails when .venv differs.
$(BIN)/.installed: $(LOCK) pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

# After a change of dependencies in pyproject.toml: resolve again and rewrite the lock (versions and hashes).
# uv keeps the pins already in the output file where they still satisfy pyproject.toml. LOCK_OUT: another file
# (tests/test_environment.py re-resolves into a copy of the lock and expects it unchanged).
LOCK_OUT ?= $(LOCK)
lock:
	@test -x $(BIN)/uv || $(MAKE) --no-print-directory $(BIN)/.installed  # uv from the lock; never a rebuild under a running .venv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --universal --python-version 3.11 \
		--custom-compile-command "make lock" -o $(LOCK_OUT) --quiet

run: $(BIN)/.installed
	$(BIN)/sipas run --year 2024 --demo

test: $(BIN)/.installed
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)  # the report test opens the HTML
	@command -v pdftotext >/dev/null || (apt-get update -qq && apt-get install -y -qq poppler-utils)  # reads the PDF scorecards back
	@Rscript -e 'library(survey)' >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq --no-install-recommends r-cran-survey)  # the R oracle test
	@command -v systemd-analyze >/dev/null || (apt-get update -qq && apt-get install -y -qq systemd)  # verifies deploy/*.service
	$(BIN)/ruff check .
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet  # the documentation site, offline (docs/, mkdocs.yml)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest  # bytecode cached: each test process and `sipas` child compiles nothing twice

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py

# What the tool made and can make again: the environment, Prefect's home, caches, the demo year and the stages'
# Parquet. Real exports (data/<year>/raw) and the published results (data/sipas.duckdb) are never deleted.
clean:
	rm -rf $(VENV) .prefect .pytest_cache .ruff_cache .test-data site data/demo data/*/work
	@echo "kept: data/<year>/raw (your exports) and data/sipas.duckdb (published runs), if present"
