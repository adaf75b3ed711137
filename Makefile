# facerec — `make help` lists the targets.
PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
DATASETS ?= ../shared/datasets
# Faces in the gallery make bench-gallery draws.
FACES    ?= 1000000
OUT      ?= out
STAGE    ?= dev
# make deploy ALARM_EMAIL=ops@example.org subscribes an address to the stage's alarms (infra/README.md).
ALARM_EMAIL ?=
# make deploy PARAMETERS="WarmPoolSize=2 MinWorkers=1" sets any other stack parameter (infra/README.md).
PARAMETERS  ?=
PORT     ?= 8000
# These two builds install offline on the project's machines; other versions pull several GB.
TORCH_PINS  := torch==2.14.1 torchvision==0.29.1
# facenet-pytorch 2.6.0 pins torch<2.3 and numpy<2 but runs on the pins above: install it alone.
FACENET_PIN := facenet-pytorch==2.6.0
# The peer bench-engine measures; it asks for dlib (a source build), dlib-bin is the same prebuilt.
PEER_PIN    := face_recognition==1.3.0
# Debian packages that tests use when present: chromium (the web page), packer (the AMI template).
SYSTEM_TOOLS := chromium packer
# make ami writes the id of the AMI it built here; make deploy reads it unless WORKER_AMI is given.
WORKER_AMI_FILE := $(OUT)/worker-ami-id
WORKER_AMI      ?= $(shell cat $(WORKER_AMI_FILE) 2>/dev/null)
DEPLOY          := $(BIN)/python -m infra.deploy

.PHONY: help setup setup-system run demo test test-fast test-control-plane lint eval \
        bench bench-engine bench-worker bench-sim bench-local bench-course bench-gallery bench-boot bench-cost package ami deploy deploy-infra destroy clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# --- Set up ---------------------------------------------------------------------------------

setup: $(VENV)/.installed  ## Build .venv with every pinned dependency (offline-safe)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install $(TORCH_PINS)
	$(BIN)/pip install --no-deps $(FACENET_PIN) $(PEER_PIN)
	$(BIN)/pip install -e '.[dev]'
	touch $@

setup-system:  ## Install Debian's chromium and packer, which the browser and AMI tests use (apt, as root)
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then echo "setup-system: $(SYSTEM_TOOLS) installed"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y --no-install-recommends $$missing; \
	else echo "setup-system:$$missing missing, and installing needs root:" >&2; \
	     echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends$$missing" >&2; \
	     echo "  (without them the browser and packer tests are skipped)" >&2; exit 1; fi

# --- Run it here ----------------------------------------------------------------------------

run: setup  ## The whole service on this machine (moto, API, web page, worker fleet) until Ctrl-C
	$(BIN)/python -m local_service --port $(PORT)

demo: setup  ## Start the service, enroll two people, recognize three photos, print, stop
	$(BIN)/python -m local_service.demo

# --- Test -----------------------------------------------------------------------------------

test: setup  ## The whole suite, slow end-to-end tests included
	$(BIN)/python -m pytest

test-fast: setup  ## The suite without the slow tests
	$(BIN)/python -m pytest -m 'not slow'

lint: setup  ## ruff (lint and format check) on the tree, strict mypy on chalicelib and the worker (facerec_worker)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-control-plane: setup  ## Only the control plane's tests (API, workflow, scaling, erasure, schedules) against moto: the control_plane marker
	$(BIN)/python -m pytest -m control_plane

eval: setup  ## Identification accuracy on knn-examples, with leave-one-person-out: out/eval.json
	$(BIN)/python -m bench.eval_identification --datasets $(DATASETS) --out $(OUT)/eval.json

# --- Measure (on a quiet machine: the figures are ratios within one run) ---------------------

bench: bench-engine bench-worker bench-cost bench-sim bench-local bench-course bench-gallery bench-boot  ## Every benchmark, merged into out/bench.json
	$(BIN)/python -m bench.merge --out-dir $(OUT)

bench-engine: setup  ## Detection on dlib-faces, then photos/s and peak memory per detector x model, face_recognition beside
	$(BIN)/python -m bench.detection --datasets $(DATASETS) --out $(OUT)/bench-detection.json
	$(BIN)/python -m bench.engine --datasets $(DATASETS) --out $(OUT)/bench-engine.json

bench-worker: setup  ## One engine on every core vs one engine per core: out/bench-worker.json
	$(BIN)/python -m bench.worker_parallelism --datasets $(DATASETS) --models dlib,facenet --out $(OUT)/bench-worker.json

bench-sim: setup  ## Simulated elasticity (4 policies, 6 traces) and cost per million photos: out/sim.json, out/plots/
	$(BIN)/python -m sim --engine $(OUT)/bench-engine.json --out $(OUT)/sim.json --plots $(OUT)/plots

bench-local: setup  ## The local stack end to end, 1000 course photos at once: out/local-stack.json
	$(BIN)/python -m bench.local_stack --datasets $(DATASETS) --photos 1000 --out $(OUT)/local-stack.json

bench-gallery: setup  ## The gallery at FACES faces drawn like real ones (1 M; FACES=10000000 for 10 M) on the local stack: load, match, recall, enroll, visible: out/bench-gallery.json
	$(BIN)/python -m bench.gallery --faces $(FACES) --datasets $(DATASETS) --out $(OUT)/bench-gallery.json

bench-boot: setup  ## A worker process from its start to its first poll (imports, engine, first ReceiveMessage), 5 runs on moto; BEFORE=<checkout> beside it: out/bench-boot.json
	$(BIN)/python -m bench.worker_boot --runs 5 $(if $(BEFORE),--before $(BEFORE) )--out $(OUT)/bench-boot.json

bench-cost: setup  ## Every AWS call per photo on each path (batch, single warm and cold, seed's POST /) on the local stack, priced: out/bench-cost.json, sim/call_counts.json
	$(BIN)/python -m bench.cost --datasets $(DATASETS) --out $(OUT)/bench-cost.json

bench-course: setup  ## The course's workload on make run: 100 then 1000 concurrent POST /, answers checked: out/bench-course.json
	$(BIN)/python -m bench.course --datasets $(DATASETS) --out $(OUT)/bench-course.json

# --- AWS: make ami, then make deploy; make destroy takes it all down (infra/README.md) ------

package: setup  ## Render the workflow into the CloudFormation template: out/template.packaged.json
	@mkdir -p $(OUT)
	$(BIN)/python -m infra.stack package > $(OUT)/template.packaged.json

ami: setup  ## Build the worker AMI with packer in your AWS account; its id goes to out/worker-ami-id
	@command -v packer >/dev/null || { echo "ami: packer is not installed: make setup-system (Debian's), or see worker_ami/README.md" >&2; exit 1; }
	$(DEPLOY) preflight
	rm -rf dist && $(BIN)/python worker_ami/wheel.py dist
	@mkdir -p $(OUT)
	{ packer build \
	    -var region=$$($(BIN)/python -c 'import boto3; print(boto3.session.Session().region_name)') \
	    -var wheel=$$(ls dist/facerec_worker-*.whl) \
	    -var weights_sha256=$$($(BIN)/python -c 'from facerec_worker.engine.config import VGGFACE2_SHA256 as s; print(s)') \
	    worker_ami/packer/worker.pkr.hcl; echo $$? > $(OUT)/ami-build.rc; } | tee $(OUT)/ami-build.log
	@test "$$(cat $(OUT)/ami-build.rc)" = 0 || { echo "ami: packer failed (log: $(OUT)/ami-build.log; packer 1.7+ needs: packer plugins install github.com/hashicorp/amazon)" >&2; exit 1; }
	@grep -oE 'ami-[0-9a-f]{8,17}' $(OUT)/ami-build.log | tail -1 > $(WORKER_AMI_FILE)
	@test -s $(WORKER_AMI_FILE) || { echo "ami: packer reported no AMI id (log: $(OUT)/ami-build.log)" >&2; exit 1; }
	@echo "worker AMI $$(cat $(WORKER_AMI_FILE)) written to $(WORKER_AMI_FILE); make deploy uses it"

deploy: setup  ## Deploy STAGE (dev) as one CloudFormation stack (chalice package + infra/template.yaml); prints the URL
	$(DEPLOY) deploy --stage $(STAGE) $(if $(WORKER_AMI),--worker-ami $(WORKER_AMI))$(if $(ALARM_EMAIL), --alarm-email $(ALARM_EMAIL))$(foreach p,$(PARAMETERS), --parameter $(p))

deploy-infra: setup  ## Only what Chalice does not create, then `chalice deploy --stage STAGE` yourself (infra/README.md)
	$(DEPLOY) deploy-infra --stage $(STAGE) $(if $(WORKER_AMI),--worker-ami $(WORKER_AMI))$(if $(ALARM_EMAIL), --alarm-email $(ALARM_EMAIL))$(foreach p,$(PARAMETERS), --parameter $(p))

destroy: setup  ## Delete STAGE from AWS: workers, bucket contents, the stack, Chalice's app, token, logs, artifacts
	$(DEPLOY) destroy --stage $(STAGE)

clean:  ## Remove the venv and generated figures
	rm -rf $(VENV) $(OUT) .pytest_cache
