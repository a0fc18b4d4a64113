# Fruits! feature pipeline. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Arguments for `make run`, e.g. make run ARGS="--input data/ --weights imagenet"
ARGS   ?=
# `make bench` settings: images in the replicated sample, runs per figure, extra sizes to sweep
BENCH_IMAGES  ?= 2592
BENCH_REPEATS ?= 3
BENCH_SIZES   ?=

.DEFAULT_GOAL := help
.PHONY: help install jars run test bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}'

$(BIN)/fruitsctl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -e ".[test]"
	@touch $@

install: $(BIN)/fruitsctl ## Create .venv/ with the job, fruitsctl and the test tools

jars: install ## Fetch the S3A connector jars (checksums verified) into ~/.cache/fruits/jars
	$(BIN)/python -m fruits.s3a_jars

run: install ## Run the job locally (demo data unless ARGS has --input)
	$(BIN)/fruitsctl run $(ARGS)

test: install jars ## Run the test suite (needs ../shared beside the project)
	$(BIN)/python -m pytest

bench: install ## Benchmark: raw model vs pipeline vs the seeds' approach (table + bench/results.json)
	$(BIN)/python bench/bench.py --images $(BENCH_IMAGES) --repeats $(BENCH_REPEATS) --sizes "$(BENCH_SIZES)"

clean: ## Remove the virtual environment and local outputs
	rm -rf $(VENV) fruits-output .pytest_cache bench/data
