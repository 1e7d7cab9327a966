# Everything runs inside .venv; `make install` creates it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARTIFACTS_DIR ?= artifacts
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve test lint audit format release-models check-deploy check-deploy-files bench-decode bench-serve bench-load bench-soak bench-chaos cluster clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python  ## install the service, the training job, test and deployment-check tools
	$(BIN)/pip install --quiet -e ".[dev,deploy]"

serve:  ## run the service on the models in ARTIFACTS_DIR
	ARTIFACTS_DIR=$(ARTIFACTS_DIR) $(BIN)/python -m app --host $(HOST) --port $(PORT)

test:  ## the whole test suite (starts a Redis server when none answers)
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check .

audit:  ## known vulnerabilities with a fixed release in the installed dependencies fail
	$(BIN)/python .ci/audit.py

format:
	$(BIN)/ruff format .

# Deployment files, checked without a Docker engine. Needs Debian's docker-compose,
# prometheus (promtool) and nginx: apt-get install docker-compose prometheus nginx.
COMPOSE ?= docker-compose
K8S_VERSION ?= 1.37.0
K8S_MANIFESTS = $(filter-out %/kustomization.yaml,$(sort $(wildcard docker/k8s/*/*.yaml)))

check-deploy: check-deploy-files  ## validate deployment files, then the live observability tests
	$(BIN)/python -m pytest tests/deploy

check-deploy-files:  ## validate Dockerfiles, compose, Prometheus, nginx and Kubernetes files
	$(COMPOSE) -f docker-compose.yml config -q
	$(COMPOSE) -f docker-compose.yml -f docker-compose.gpu.yml config -q
	$(BIN)/hadolint Dockerfile docker/gpu.Dockerfile
	promtool check config docker/prometheus.yml
	nginx -t -q -c $(CURDIR)/docker/nginx.conf
	$(BIN)/kubernetes-validate --strict --kubernetes-version $(K8S_VERSION) $(K8S_MANIFESTS)

# The recorded configurations of the shipped models (docs/training.md), retrained into
# RELEASE_OUT; publish a result with `python -m model.ship VERSION_DIR --to artifacts`.
DATA_DIR ?= ../shared/data
RELEASE_OUT ?= runs
release-models:  ## retrain en->de and de->en (general mixture), sentiment (the en mixture) and langid
	# en->de: the general-domain mixture in two runs, as shipped (docs/training.md: 9 epochs
	# of 300 updates in bfloat16 on 2 CPU cores, then continued from that version for 4 more;
	# more epochs are what more compute buys)
	stage=$$($(BIN)/python -m model.train translation --recipe recipes/translation-general.toml \
	  --data-dir $(DATA_DIR) --source en --target de --preset release --dropout 0.1 \
	  --attention-dropout 0.0 --vocab-size 12000 --batch-tokens 4096 --warmup-steps 800 \
	  --learning-rate-scale 1.0 --epochs 9 --epoch-steps 300 --average-checkpoints 3 \
	  --early-stopping-patience 5 --beam-size 4 --mixed-precision auto --jit-compile auto \
	  --out $(RELEASE_OUT) | tail -n 1) && \
	$(BIN)/python -m model.train translation --recipe recipes/translation-general.toml \
	  --data-dir $(DATA_DIR) --source en --target de --init-from "$$stage" \
	  --epochs 4 --mixed-precision auto --jit-compile off --out $(RELEASE_OUT)
	# de->en: the same mixture and shape in two runs, as shipped (docs/training.md: 4 epochs
	# of 300 updates in float32, then continued from that version for 17 more in bfloat16
	# with a larger typed share; more epochs are what more compute buys)
	stage=$$($(BIN)/python -m model.train translation --recipe recipes/translation-general.toml \
	  --data-dir $(DATA_DIR) --source de --target en --preset release --dropout 0.1 \
	  --attention-dropout 0.0 --vocab-size 12000 --batch-tokens 4096 --warmup-steps 800 \
	  --learning-rate-scale 1.0 --epochs 4 --epoch-steps 300 --average-checkpoints 3 \
	  --early-stopping-patience 5 --beam-size 4 --mixed-precision auto --jit-compile auto \
	  --out $(RELEASE_OUT) | tail -n 1) && \
	$(BIN)/python -m model.train translation --recipe recipes/translation-general.toml \
	  --data-dir $(DATA_DIR) --source de --target en --init-from "$$stage" --typed-share 0.3 \
	  --epochs 17 --mixed-precision auto --jit-compile off --out $(RELEASE_OUT)
	# sentiment/en: SST-2, IMDB and pros/cons (docs/training.md: one masked-LM epoch over
	# IMDB's unlabeled reviews, then 8 epochs of 1,000 updates, 90 minutes on 2 CPU cores)
	$(BIN)/python -m model.train sentiment --recipe recipes/sentiment-en.toml \
	  --data-dir $(DATA_DIR) --preset small --pretrain-epochs 1 --epochs 8 --epoch-steps 1000 \
	  --warmup-steps 2000 --learning-rate-scale 0.5 --average-checkpoints 3 \
	  --mixed-precision auto --jit-compile off --out $(RELEASE_OUT)
	$(BIN)/python -m model.train langid --data-dir $(DATA_DIR)/multi30k --languages en,de,fr,cs \
	  --preset tiny --d-model 64 --num-heads 2 --d-ff 128 --layers 2 --vocab-size 2000 \
	  --epochs 3 --batch-size 64 --warmup-steps 300 --dropout 0.1 --max-minutes 12 --out $(RELEASE_OUT)

bench-decode:  ## decoding speed and quality: naive loop vs cached greedy vs beam
	$(BIN)/python -m bench.decode --artifact $(ARTIFACTS_DIR)/translation/en-de

bench-serve:  ## /translate throughput and latency, batching on and off
	$(BIN)/python -m bench.serve --artifacts $(ARTIFACTS_DIR)

bench-load:  ## 60 s of mixed-endpoint load at 64 clients: throughput, p50/p95/p99, errors
	$(BIN)/python -m bench.load --artifacts $(ARTIFACTS_DIR)

bench-soak:  ## 10 minutes of the same load: memory of the service at start and end
	$(BIN)/python -m bench.load --artifacts $(ARTIFACTS_DIR) --soak

bench-chaos:  ## 3 replicas behind nginx, 32 clients: a replica killed, Redis restarted, a drain, a rollout
	$(BIN)/python -m bench.chaos --artifacts $(ARTIFACTS_DIR)

cluster:  ## ARTIFACTS_DIR served by 3 replicas behind nginx on port 8080 (needs nginx, redis-server)
	$(BIN)/python -m bench.cluster --artifacts $(ARTIFACTS_DIR) --replicas 3 --port 8080

clean:
	rm -rf .pytest_cache .ruff_cache test-output
