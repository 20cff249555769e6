# The README's two commands: `make run` and `make test`. Everything else hangs off these.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint down image
run: $(VENV)/.installed
	$(BIN)/sentinel up --demo

# Three Kafka brokers, as in k8s/ (docs/reliability.md); `sentinel up` keeps one unless told otherwise.
test: export SENTINEL_KAFKA_BROKERS ?= 3
test: $(VENV)/.installed
	$(BIN)/sentinel stack up
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

# The container image every k8s/ manifest runs (Containerfile), built with buildah: image/build.sh.
image:
	image/build.sh

down: $(VENV)/.installed
	$(BIN)/sentinel down

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@
