# facerec — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# These two builds install offline on the project's machines; other versions pull several GB.
TORCH_PINS    := torch==2.14.1 torchvision==0.29.1
# facenet-pytorch 2.6.0 pins torch<2.3 and numpy<2 but runs on the pins above: install it alone.
FACENET_PIN   := facenet-pytorch==2.6.0
DATASETS      ?= ../shared/datasets
OUT           ?= out

.PHONY: help setup run demo test test-fast eval bench-engine bench-worker clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## Build .venv with every pinned dependency (offline-safe)

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install $(TORCH_PINS)
	$(BIN)/pip install --no-deps $(FACENET_PIN)
	$(BIN)/pip install -e '.[dev]'
	touch $@

run: setup  ## The whole service on this machine (moto, API, web page, worker fleet) until Ctrl-C
	$(BIN)/python -m local_service

demo: setup  ## Start the service, enroll two people, recognize three photos, print, stop
	$(BIN)/python -m local_service.demo

test: setup  ## Run the whole suite, slow end-to-end tests included
	$(BIN)/python -m pytest

test-fast: setup  ## Run the suite without the slow tests
	$(BIN)/python -m pytest -m 'not slow'

eval: setup  ## Identification accuracy on knn-examples, with leave-one-person-out
	$(BIN)/python -m bench.eval_identification --datasets $(DATASETS) --out $(OUT)/eval.json

bench-engine: setup  ## Engine photos/s and peak memory, one at a time vs batched, both models
	$(BIN)/python -m bench.engine --datasets $(DATASETS) --out $(OUT)/bench-engine.json

bench-worker: setup  ## One engine on every core vs one engine per core: out/bench-worker.json
	$(BIN)/python -m bench.worker_parallelism --datasets $(DATASETS) --models dlib,facenet --out $(OUT)/bench-worker.json

clean:  ## Remove the venv and generated figures
	rm -rf $(VENV) $(OUT) .pytest_cache

.PHONY: package test-control-plane

package: setup  ## Render the workflow into the CloudFormation template: out/template.packaged.json
	@mkdir -p $(OUT)
	$(BIN)/python -m infra.stack package > $(OUT)/template.packaged.json

test-control-plane: setup  ## Only the control plane's tests (API, workflow, scaling) against moto
	$(BIN)/python -m pytest tests/test_api_*.py tests/test_workflow_*.py tests/test_scaling_*.py

.PHONY: bench bench-sim

bench-sim: setup  ## Simulated elasticity (4 policies, 6 traces) and cost per million photos: out/sim.json, out/plots/
	$(BIN)/python -m sim --engine $(OUT)/bench-engine.json --out $(OUT)/sim.json --plots $(OUT)/plots

bench: bench-engine bench-sim  ## Every benchmark, merged into out/bench.json (engine, sim, cost, local_stack)
	$(BIN)/python -m bench.merge --out-dir $(OUT)

.PHONY: setup-browser

setup-browser:  ## Install Debian's chromium for the web page's browser test (apt, as root)
	@if [ -x /usr/bin/chromium ]; then echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y --no-install-recommends chromium; \
	else echo "setup-browser: /usr/bin/chromium is missing and installing it needs root:" >&2; \
	     echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium" >&2; \
	     echo "  (without it, tests/test_web_page.py is skipped)" >&2; exit 1; fi

.PHONY: setup-packer

setup-packer:  ## Install Debian's packer, to validate (and build) the worker AMI's template
	@if command -v packer >/dev/null; then packer version; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y --no-install-recommends packer; \
	else echo "setup-packer: packer is missing and installing it needs root:" >&2; \
	     echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends packer" >&2; exit 1; fi
