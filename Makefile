# CloudTune: `make run` starts the app, `make test` runs every check. Both set up .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test test-fast venv lint typecheck pytest bench cloud-contract clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# the file watcher is off (an installed app needs none); `make run WATCH=auto` turns it on
WATCH ?= none
run: $(STAMP)
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.fileWatcherType $(WATCH)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy core app_pages

pytest: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile

test: lint typecheck pytest

# the edit-run loop: lint, types and every test but the ones that train real models or drive
# a browser (pytest markers slow and browser); `make test` before a commit
test-fast: lint typecheck
	$(BIN)/pytest -q -m "not slow and not browser"

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	$(BIN)/python -m bench

# the container contract tests (tests/contract) under each target training image's Python,
# TensorFlow, Keras and NumPy: one virtual environment per image in .venv-contract/, made with
# pyenv's interpreters; results in bench/results/cloud_contract.json
cloud-contract: $(STAMP)
	$(BIN)/python -m bench.cloud_contract

clean:
	rm -rf $(VENV) .venv-contract .pytest_cache .mypy_cache .ruff_cache
