# The course's commands. `make book` and `make test` work on a fresh machine from a
# clean clone: each creates the virtual environment from requirements.lock first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# A local folder with the original CSV files stands in for the download when it exists.
COURSE_DATA_DIR ?= $(if $(wildcard ../shared/data/mlm.csv),$(abspath ../shared/data))
ifneq ($(strip $(COURSE_DATA_DIR)),)
export COURSE_DATA_DIR
endif
# Fitted models are cached here (git-ignored) and reused while nothing changed.
COURSE_FIT_CACHE ?= $(CURDIR)/.cache/fits
export COURSE_FIT_CACHE

.PHONY: help venv data book test test-fast bench-trolley clean clean-fits lock

help:
	@echo "make book       build the book (HTML in _build/html)"
	@echo "make test       run the whole test suite"
	@echo "make test-fast  run the unit tests only (seconds)"
	@echo "make data       fetch and verify the data sets"
	@echo "make bench-trolley  time the Trolley model under each sampler (about 12 min)"
	@echo "make clean      remove the built book;  make clean-fits  remove cached fits"
	@echo "make lock       re-resolve requirements.lock from pyproject.toml"

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed (python3.11 or python3 on PATH)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "$(PYTHON) is not Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

data: venv
	$(BIN)/python -m course_utils.data

# jupyter-cache re-executes a chapter when its own code changes; a change to the helpers
# or the pinned versions can change any chapter's output, so it empties the cache.
_build/.helpers-stamp: $(wildcard course_utils/*.py) requirements.lock
	rm -rf _build/.jupyter_cache
	@mkdir -p _build && touch $@

book: data _build/.helpers-stamp
	$(BIN)/jupyter-book build . --warningiserror --keep-going

test: data
	$(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m "not slow"

bench-trolley: data
	$(BIN)/python benchmarks/trolley_samplers.py

clean:
	rm -rf _build

clean-fits:
	rm -rf $(COURSE_FIT_CACHE)

lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet ".[book,test]"
	{ sed -n '1,3p' requirements.lock; .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^multilevel-adventures'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf .lock-venv
