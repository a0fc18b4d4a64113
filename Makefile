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
BENCH_SCALE_IMAGES ?= 0
# `make bench-scale`: more options for its `fruitsctl run`, e.g. BENCH_SCALE_ARGS="--image-size 224"
BENCH_SCALE_ARGS ?=

# Image and cluster settings
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
SPARK_VERSION := $(shell sed -n 's/^ARG SPARK_VERSION=//p' images/Dockerfile)
IMAGE      ?= fruits-pipeline:$(VERSION)
# The same plus TensorFlow (`make image-tf`): what fruitsctl and the chart pick by default for the
# settings the lean image cannot serve (--runtime tf, another backbone, size or weights)
IMAGE_TF   ?= $(IMAGE)-tf
REGISTRY   ?=
# docker where its engine answers, else podman (a docker client alone cannot build)
CONTAINER  ?= $(shell docker info >/dev/null 2>&1 && echo docker || command -v podman 2>/dev/null || command -v docker 2>/dev/null)
# The image's base: ours (`make spark-base`: the official recipe on Debian 12, whose Python 3.11
# is a final release), or BASE_IMAGE=apache/spark:$(SPARK_VERSION)-scala2.12-java17-ubuntu
SPARK_BASE := localhost/spark-base:$(SPARK_VERSION)
BASE_IMAGE ?= $(SPARK_BASE)
# Its recipe's digest, as a label: `make image` builds the base again when the one it finds (a
# machine keeps images between clones) was built from another recipe
SPARK_BASE_RECIPE := $(shell cat images/spark-base/* | sha256sum | cut -c1-16)
# The Debian 12 root of spark-base: pulled, or made with debootstrap where no registry answers
DEBIAN_IMAGE ?= docker.io/library/debian:bookworm-slim
# Offline or behind a TLS-inspecting proxy: the backbone's ImageNet weights as a Keras weights
# file, and the proxy's CA bundle (a build secret, never in the image)
WEIGHTS    ?=
CA_BUNDLE  ?=
# The policy scanner `make policy` runs (its own venv: its pins clash with the project's)
CHECKOV_VERSION := 3.3.30
# Where `make spark-base` finds the official image recipe (entrypoint.sh)
SPARK_IMAGE_RECIPE ?= ../shared/upstream/apache-spark-image
IMAGE_INPUTS := .cache/image-inputs
ifneq ($(findstring podman,$(CONTAINER)),)
# rootful podman inside a container or VM cannot set its default ulimits (images/podman/)
export CONTAINERS_CONF ?= $(CURDIR)/images/podman/containers.conf
endif
VALUES     ?= charts/fruits-pipeline/ci/minikube-values.yaml
# `make iam-policy`: whose policy (the run's pods, or the History Server's), and its template in deploy/iam/
ROLE       ?= job
IAM_TEMPLATE_job := s3-policy.json
IAM_TEMPLATE_history-server := history-server-policy.json
OPERATOR_VERSION := $(shell sed -n 's/^OPERATOR_VERSION = "\(.*\)"/\1/p' job/fruits/cluster/api_errors.py)
MINIO_ENV  := AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=fruits-dev AWS_SECRET_ACCESS_KEY=fruits-dev-secret AWS_REGION=us-east-1

.DEFAULT_GOAL := help
.PHONY: help install lock arch-check jars run test test-fast lint docs chart-readme alert-rules bench bench-incremental bench-export bench-scale bench-cli base-install-check clean image-inputs image image-tf image-push image-test bench-image spark-base iam-policy policy chart \
        minikube-up minikube-operator minikube-minio minikube-image minikube-upload minikube-run minikube-report

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}'

$(BIN)/fruitsctl: pyproject.toml requirements-test.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off --require-hashes -r requirements-test.lock
	$(BIN)/pip install --progress-bar off --no-deps -e .
	@touch $@

# The locks: every package and its hashes, for any platform (markers pick tensorflow-cpu on
# x86-64, tensorflow on arm64). Regenerate after changing a pin in pyproject.toml. Everything
# first (each lock's own pins are uv's preferences: nothing moves that need not), then the
# image's two from it, so that they agree with it: requirements.lock (the lean image) and
# requirements-tf.lock, only what the `tf` extra adds to it (the -tf image's layer).
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --no-header -q
lock: install ## Re-resolve requirements-test.lock (make install), requirements.lock and requirements-tf.lock (images)
	$(UV_COMPILE) --extra job --extra tf --extra test -o requirements-test.lock
	$(UV_COMPILE) --extra job -c requirements-test.lock -o requirements.lock
	$(UV_COMPILE) --extra job --extra tf -c requirements-test.lock -o requirements-tf.lock \
	  $$(sed -n 's/^\([A-Za-z0-9][^= ]*\)==.*/--no-emit-package \1/p' requirements.lock)

# pyspark is published as a source archive only (pure Python): every other package must have a wheel.
ARCHS ?= x86_64 aarch64
arch-check: install ## Both images' locked dependencies have wheels for linux/amd64 and linux/arm64
	for arch in $(ARCHS); do \
	  for locks in requirements.lock "requirements.lock requirements-tf.lock"; do \
	    $(BIN)/uv pip compile $$locks --python-version 3.11 --python-platform $$arch-manylinux_2_28 \
	      --only-binary :all: --no-binary pyspark --no-header -q -o /dev/null && echo "$$arch, $$locks: resolves" || exit 1; \
	  done; \
	done

install: $(BIN)/fruitsctl ## Create .venv/ with the job, fruitsctl and the test tools

jars: install ## Fetch the S3A connector jars (checksums verified) into ~/.cache/fruits/jars
	$(BIN)/python -m fruits.io.s3a_jars

run: install ## Run the job locally (demo data unless ARGS has --input)
	$(BIN)/fruitsctl run $(ARGS)

test: install jars ## Run the unit and integration tests (needs ../shared beside the project; not the image tests)
	$(BIN)/python -m pytest

test-fast: install ## Run the unit tests only: no Spark, no network, under a minute
	$(BIN)/python -m pytest tests/unit

lint: install ## Format and lint (ruff), types (mypy), import layers (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

docs: install ## Build the docs site (mkdocs, strict: broken links fail) into .cache/site
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d .cache/site

chart-readme: install ## Regenerate charts/fruits-pipeline/README.md from the values' `# --` comments
	$(BIN)/python .ci/chart_readme.py

alert-rules: install ## Regenerate deploy/prometheus/fruits-alerts.yaml from the chart's alert rules
	$(BIN)/python .ci/alert_rules.py

bench: install ## Benchmark: raw model vs pipeline vs the seeds' approach (table + bench/results.json)
	$(BIN)/python bench/bench.py --images $(BENCH_IMAGES) --repeats $(BENCH_REPEATS) --sizes "$(BENCH_SIZES)" --scale-images $(BENCH_SCALE_IMAGES)

base-install-check: ## The base install (no job extra) in a fresh venv: cluster and S3 commands work, run names the extra
	bash .ci/base-install

bench-incremental: install ## Incremental vs full runs only, 10% new images (prints + bench/results-incremental.json)
	$(BIN)/python bench/bench.py --only incremental --images $(BENCH_IMAGES) --repeats $(BENCH_REPEATS) --scale-images $(BENCH_SCALE_IMAGES)

bench-cli: install ## fruitsctl's start: --help, status --help, list and status against a fake API (bench/results-cli.json)
	$(BIN)/python bench/cli_startup.py --runs 21 --json bench/results-cli.json

bench-export: install ## The phone export only: sizes, parity, top-1, one-thread latency (bench/results-export.json)
	$(BIN)/python bench/bench.py --only export

bench-scale: install ## run, transform, evaluate, report, export on the 41,322 training images: wall, rows/s, peak RSS (bench/results-scale.json)
	$(BIN)/python bench/scale.py --json bench/results-scale.json --run-args "$(BENCH_SCALE_ARGS)"

spark-base: install ## Build our Spark base: the official apache/spark recipe on Debian 12 (JRE 17, the pyspark wheel's Spark)
	@test -n "$(CONTAINER)" || { echo "make spark-base needs docker or podman on the PATH"; exit 1; }
	@debian=$(DEBIAN_IMAGE); \
	if ! $(CONTAINER) image inspect $$debian >/dev/null 2>&1 && ! $(CONTAINER) pull -q $$debian >/dev/null 2>&1; then \
	  debian=localhost/debian-minbase:bookworm; echo "$(DEBIAN_IMAGE) cannot be pulled: using $$debian (debootstrap)"; \
	  if ! $(CONTAINER) image inspect $$debian >/dev/null 2>&1; then \
	    command -v debootstrap >/dev/null || { echo "make spark-base needs debootstrap here (apt-get install debootstrap)"; exit 1; }; \
	    rm -rf .cache/rootfs && mkdir -p .cache && debootstrap --variant=minbase bookworm $(CURDIR)/.cache/rootfs http://deb.debian.org/debian \
	    && tar -C .cache/rootfs -c . | $(CONTAINER) import - $$debian && rm -rf .cache/rootfs || exit 1; fi; fi; \
	$(BIN)/python images/spark-base/assemble.py .cache/spark-base-context $(SPARK_IMAGE_RECIPE) \
	&& $(CONTAINER) build -f images/spark-base/Dockerfile --build-arg DEBIAN_IMAGE=$$debian \
	  --label fruits.spark-base.recipe=$(SPARK_BASE_RECIPE) -t $(SPARK_BASE) .cache/spark-base-context

# Both images come from one Dockerfile: the -tf one is the lean one's layers plus TensorFlow's,
# and each build reuses the stages the other built (podman's / docker's layer cache).
IMAGE_BUILD = $(CONTAINER) build -f images/Dockerfile --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg TF_IMAGE=$(IMAGE_TF) \
  --secret id=ca,src=$(or $(CA_BUNDLE),.cache/no-ca.pem)
image-inputs:
	@test -n "$(CONTAINER)" || { echo "make image needs docker or podman on the PATH"; exit 1; }
	@if [ "$(BASE_IMAGE)" = "$(SPARK_BASE)" ] && [ "$$($(CONTAINER) image inspect $(SPARK_BASE) \
	    --format '{{index .Config.Labels "fruits.spark-base.recipe"}}' 2>/dev/null)" != "$(SPARK_BASE_RECIPE)" ]; then \
	  $(MAKE) spark-base; fi
	rm -rf $(IMAGE_INPUTS) && mkdir -p $(IMAGE_INPUTS)
	$(if $(WEIGHTS),cp $(WEIGHTS) $(IMAGE_INPUTS)/)  # its name kept: Keras reads *.weights.h5 and legacy *.h5 apart
	$(if $(CA_BUNDLE),,touch .cache/no-ca.pem)

image: image-inputs ## Build the lean image: LiteRT and baked models, no TensorFlow (IMAGE=name:tag BASE_IMAGE=... WEIGHTS=file.h5 CA_BUNDLE=ca.pem)
	$(IMAGE_BUILD) --target lean -t $(IMAGE) .

image-tf: image-inputs ## Build the -tf image (IMAGE_TF, default IMAGE-tf): the lean one plus TensorFlow, Keras and the weights
	$(IMAGE_BUILD) --target tf -t $(IMAGE_TF) .

image-test: install ## Run the job in both images: alone, as a cluster of containers, from the operator's entry (needs `make image image-tf`)
	rm -f .cache/image-report.json
	FRUITS_IMAGE=$(IMAGE) FRUITS_TF_IMAGE=$(IMAGE_TF) FRUITS_CONTAINER=$(CONTAINER) $(BIN)/python -m pytest -m image tests/image -p no:cacheprovider
	@echo "Image report (.cache/image-report.json):" && cat .cache/image-report.json

bench-image: install ## Both images: size, save | load into an empty store, and a tiny run's time (bench/results-image.json)
	$(BIN)/python bench/image_pull.py --engine $(CONTAINER) --images $(IMAGE) $(IMAGE_TF) --json bench/results-image.json

image-push: image image-tf ## Push both images: make image-push REGISTRY=123456789012.dkr.ecr.eu-west-1.amazonaws.com
	@test -n "$(REGISTRY)" || { echo "set REGISTRY=<registry host[/path]>"; exit 1; }
	for image in $(IMAGE) $(IMAGE_TF); do \
	  $(CONTAINER) tag $$image $(REGISTRY)/$$image && $(CONTAINER) push $(REGISTRY)/$$image || exit 1; done

policy: install ## Checkov on the chart (every ci/ values file, and the pods the operator makes), deploy/ and images/
	@test -x .cache/checkov/bin/checkov || { $(PYTHON) -m venv .cache/checkov \
	  && .cache/checkov/bin/pip install --quiet --progress-bar off checkov==$(CHECKOV_VERSION); }
	$(BIN)/python .ci/policy_manifests.py .cache/policy
	BC_SKIP_MAPPING=TRUE .cache/checkov/bin/checkov --config-file .checkov.yaml --skip-download --compact --quiet \
	  --framework kubernetes -d .cache/policy -d deploy
	BC_SKIP_MAPPING=TRUE .cache/checkov/bin/checkov --config-file .checkov.yaml --skip-download --compact --quiet \
	  --framework dockerfile -f images/Dockerfile -f images/spark-base/Dockerfile

iam-policy: install ## The least-privilege S3 policy for a values file (VALUES=...): a run's, or ROLE=history-server's
	@$(BIN)/python -m fruits.cluster.iam deploy/iam/$(or $(IAM_TEMPLATE_$(ROLE)),$(error ROLE must be job or history-server)) $(VALUES)

chart: install ## Lint and render the chart with VALUES=<values file> (Helm's engine, no helm binary needed)
	$(BIN)/python -c "import yaml, helm_python as h; v = yaml.safe_load(open('$(VALUES)')); \
	  r = h.lint('charts/fruits-pipeline', v, strict=True); assert not r['errors'], r; \
	  print('\n---\n'.join(t for p, t in h.Chart.load('charts/fruits-pipeline').render(v, name='fruits', namespace='default').items() if not p.endswith('NOTES.txt')))"

minikube-up: ## minikube: start a cluster big enough for TensorFlow executors
	minikube start --cpus 4 --memory 8g

minikube-operator: ## minikube: install the spark-operator from its own chart, watching namespace default
	helm repo add spark-operator https://kubeflow.github.io/spark-operator
	helm upgrade --install spark-operator spark-operator/spark-operator --version $(OPERATOR_VERSION) \
	  --namespace spark-operator --create-namespace --set "spark.jobNamespaces={default}" --wait

minikube-minio: ## minikube: MinIO and the credentials Secret the pods read
	kubectl apply -f deploy/minikube/minio.yaml
	kubectl -n minio rollout status deploy/minio --timeout=180s

minikube-image: ## minikube: build the lean image inside minikube (no registry needed)
	mkdir -p $(IMAGE_INPUTS)
	minikube image build -t $(IMAGE) -f images/Dockerfile --build-opt=build-arg=TF_IMAGE=$(IMAGE_TF) .

minikube-upload: install ## minikube: upload the demo dataset (or DATA=<folder>) to s3://fruits/sample in MinIO
	$(BIN)/fruitsctl demo-data .cache/demo-images
	kubectl -n minio port-forward svc/minio 9000:9000 >/dev/null & pid=$$!; sleep 3; \
	  $(MINIO_ENV) $(BIN)/fruitsctl upload $${DATA:-.cache/demo-images} s3://fruits/sample --create-bucket; \
	  status=$$?; kill $$pid; exit $$status

minikube-run: install ## minikube: install the chart with VALUES and follow the run to its end (exit 0 only on COMPLETED)
	helm upgrade --install fruits-pipeline charts/fruits-pipeline -f $(VALUES) --wait
	$(BIN)/fruitsctl wait fruits-pipeline --logs --poll 3

minikube-report: install ## minikube: HTML report of the minikube run, read from MinIO
	kubectl -n minio port-forward svc/minio 9000:9000 >/dev/null & pid=$$!; sleep 3; \
	  $(MINIO_ENV) $(BIN)/fruitsctl report s3://fruits/runs/minikube --s3-path-style; status=$$?; kill $$pid; exit $$status

clean: ## Remove the virtual environment and local outputs
	rm -rf $(VENV) fruits-output .pytest_cache bench/data
