# Two commands: `make run` (a full-size synthetic year through the Prefect flow into DuckDB)
# and `make test`. Both create .venv and install the project first when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/sipas run --year 2024 --demo

test: $(BIN)/.installed
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)  # the report test opens the HTML
	$(BIN)/ruff check .
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet  # the documentation site, offline (docs/, mkdocs.yml)
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py

# What the tool made and can make again: the environment, Prefect's home, caches, the demo year and the stages'
# Parquet. Real exports (data/<year>/raw) and the published results (data/sipas.duckdb) are never deleted.
clean:
	rm -rf $(VENV) .prefect .pytest_cache .ruff_cache site data/demo data/*/work
	@echo "kept: data/<year>/raw (your exports) and data/sipas.duckdb (published runs), if present"
