# Everything runs inside .venv; `make install` creates it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARTIFACTS_DIR ?= artifacts
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve test lint format bench-decode bench-serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python  ## install the service, the training job and the test tools
	$(BIN)/pip install --quiet -e ".[dev]"

serve:  ## run the service on the models in ARTIFACTS_DIR
	ARTIFACTS_DIR=$(ARTIFACTS_DIR) $(BIN)/python -m app --host $(HOST) --port $(PORT)

test:  ## the whole test suite (starts a Redis server when none answers)
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check .

format:
	$(BIN)/ruff format .

bench-decode:  ## decoding speed and quality: naive loop vs cached greedy vs beam
	$(BIN)/python -m bench.decode --artifact $(ARTIFACTS_DIR)/translation/en-de

bench-serve:  ## /translate throughput and latency, batching on and off
	$(BIN)/python -m bench.serve --artifacts $(ARTIFACTS_DIR)

clean:
	rm -rf .pytest_cache .ruff_cache test-output
