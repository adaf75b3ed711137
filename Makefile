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

# --- AWS: make ami, then make deploy; make destroy takes it all down (infra/README.md) ----------
.PHONY: ami deploy deploy-infra destroy

STAGE           ?= dev
# make ami writes the id of the AMI it built here; make deploy reads it unless WORKER_AMI is given.
WORKER_AMI_FILE := $(OUT)/worker-ami-id
WORKER_AMI      ?= $(shell cat $(WORKER_AMI_FILE) 2>/dev/null)
DEPLOY          := $(BIN)/python -m infra.deploy

ami: setup  ## Build the worker AMI with packer in your AWS account; its id goes to out/worker-ami-id
	@command -v packer >/dev/null || { echo "ami: packer is not installed: make setup-packer (Debian's), or see worker_ami/README.md" >&2; exit 1; }
	$(DEPLOY) preflight
	rm -rf dist && $(BIN)/pip wheel --quiet --no-deps -w dist .
	@mkdir -p $(OUT)
	{ packer build \
	    -var region=$$($(BIN)/python -c 'import boto3; print(boto3.session.Session().region_name)') \
	    -var wheel=$$(ls dist/facerec-*.whl) \
	    -var weights_sha256=$$($(BIN)/python -c 'from facerec_worker.engine.config import VGGFACE2_SHA256 as s; print(s)') \
	    worker_ami/packer/worker.pkr.hcl; echo $$? > $(OUT)/ami-build.rc; } | tee $(OUT)/ami-build.log
	@test "$$(cat $(OUT)/ami-build.rc)" = 0 || { echo "ami: packer failed (log: $(OUT)/ami-build.log; packer 1.7+ needs: packer plugins install github.com/hashicorp/amazon)" >&2; exit 1; }
	@grep -oE 'ami-[0-9a-f]{8,17}' $(OUT)/ami-build.log | tail -1 > $(WORKER_AMI_FILE)
	@test -s $(WORKER_AMI_FILE) || { echo "ami: packer reported no AMI id (log: $(OUT)/ami-build.log)" >&2; exit 1; }
	@echo "worker AMI $$(cat $(WORKER_AMI_FILE)) written to $(WORKER_AMI_FILE); make deploy uses it"

deploy: setup  ## Deploy STAGE (dev) as one CloudFormation stack (chalice package + infra/template.yaml); prints the URL
	$(DEPLOY) deploy --stage $(STAGE) $(if $(WORKER_AMI),--worker-ami $(WORKER_AMI))

deploy-infra: setup  ## Only what Chalice does not create, then `chalice deploy --stage STAGE` yourself (infra/README.md)
	$(DEPLOY) deploy-infra --stage $(STAGE) $(if $(WORKER_AMI),--worker-ami $(WORKER_AMI))

destroy: setup  ## Delete STAGE from AWS: workers, bucket contents, the stack, Chalice's app, token, logs, artifacts
	$(DEPLOY) destroy --stage $(STAGE)
