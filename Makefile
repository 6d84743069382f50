# The course's commands. `make book` and `make test` work on a fresh machine from a
# clean clone: each creates the virtual environment from requirements.lock first.

# The Python the course is tested on, named in .python-version (the file pyenv and uv
# read): python3.13 on PATH (a pyenv shim answers once that file names it), else pyenv's
# own install of it.
PYTHON_VERSION := $(strip $(file < .python-version))
PYTHON ?= $(or $(shell command -v python$(PYTHON_VERSION) 2>/dev/null),$(lastword $(sort $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/$(PYTHON_VERSION).*/bin/python))))
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

.PHONY: help venv data book test test-fast bench-trolley bench-models bench-seeds parity clean clean-fits lock release grade reference bench-grading bench-cluster browser-tools apt-install

help:
	@echo "make book       build the book (HTML in _build/html)"
	@echo "make test       run the whole test suite"
	@echo "make test-fast  run the unit tests only (seconds)"
	@echo "make data       fetch and verify the data sets"
	@echo "make browser-tools  install the browser test's Chromium (Debian) and Node packages"
	@echo "make bench-trolley  time the Trolley model under each sampler (about 12 min)"
	@echo "make bench-seeds    fit every model of the book with 10 to 20 seeds each; every fit must meet the convergence policy (about an hour)"
	@echo "make bench-models   fit all five lecture models from a cold cache and time them beside brms (about 5 min; about 20 when R and brms are installed and brms is fitted in the same run)"
	@echo "make parity     refit the five models with brms in R (parity/brms_results.json; about 15 min)"
	@echo "make release    make the student version of the exercises (exercises/release/trolley)"
	@echo "make grade      grade every submission in exercises/submitted/ (grades.csv, feedback/)"
	@echo "make reference  rebuild the exercises' reference posterior (autograder/reference/trolley.json)"
	@echo "make bench-grading  grade a class of 20 correct submissions and report times (about 25 min)"
	@echo "make bench-cluster  grade a mixed class on Dask and on threads, and model a larger class's cost (about 30 min)"
	@echo "make clean      remove the built book;  make clean-fits  remove cached fits"
	@echo "make lock       re-resolve requirements.lock from pyproject.toml"

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python $(PYTHON_VERSION) is needed (.python-version): install it (e.g. 'pyenv install $(PYTHON_VERSION)' or 'uv python install $(PYTHON_VERSION)') or run make PYTHON=/path/to/python$(PYTHON_VERSION)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(".".join(map(str, sys.version_info[:2])) != "$(PYTHON_VERSION)")' || { echo "$(PYTHON) is not Python $(PYTHON_VERSION) (.python-version)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

data: venv
	$(BIN)/python -m course_utils.data

# Node packages pinned in package-lock.json: MathJax, which the book serves from its own
# pages (no CDN), and playwright-core, which drives Debian's Chromium in the browser test.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory APT_PACKAGES="nodejs npm" apt-install
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The browser test's Chromium, from Debian (no tool downloads a browser of its own).
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM
$(CHROMIUM):
	$(MAKE) --no-print-directory APT_PACKAGES="chromium fonts-dejavu-core" apt-install

browser-tools: node_modules/.installed $(CHROMIUM)

# The sandbox every student notebook runs in when grading (Debian's bubblewrap).
BWRAP ?= /usr/bin/bwrap
$(BWRAP):
	$(MAKE) --no-print-directory APT_PACKAGES="bubblewrap" apt-install

apt-install:
	@test "$$(id -u)" = 0 || { echo "Missing: $(APT_PACKAGES). Install them with 'sudo apt-get install $(APT_PACKAGES)' (Debian), then run make again."; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)

# jupyter-cache re-executes a chapter when its own code changes; a change to the helpers
# or the pinned versions can change any chapter's output, so it empties the cache, and
# Sphinx's record of what it has read (.doctrees), without which Sphinx would see no
# changed page and execute nothing.
_build/.helpers-stamp: $(wildcard course_utils/*.py course_utils/models/*.py) requirements.lock
	rm -rf _build/.jupyter_cache _build/.doctrees
	@mkdir -p _build && touch $@

book: data node_modules/.installed _build/.helpers-stamp
	$(BIN)/jupyter-book build . --warningiserror --keep-going

test: data browser-tools $(BWRAP)
	$(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m "not slow"

bench-trolley: data
	$(BIN)/python benchmarks/trolley_samplers.py

# Every model of the book with many seeds (the reference's and the grader's trusted fits use
# the Trolley chapter's settings): the settings must meet the convergence policy for each
# (benchmarks/results/seed_robustness.json, which tests/test_seed_robustness.py holds
# against today's settings).
bench-seeds: data
	$(BIN)/python benchmarks/seed_robustness.py

# All five lecture models from an empty (temporary) fit cache, beside brms: fitted in the same
# run when R and brms are installed (make parity installs them), else its recorded numbers.
bench-models: data
	$(BIN)/python benchmarks/all_models.py

# The brms fits the parity appendix compares with: R and brms from Debian (parity/setup.sh),
# then the lecture's five models (parity/fit_brms.R). On demand only, never in the book
# build or the tests: R is not needed to run the course.
parity: data
	bash parity/setup.sh
	PARITY_DATA_MLM=$$($(BIN)/python -c 'from course_utils.data import path; print(path("mlm"))') \
	PARITY_DATA_CHIMPANZEES=$$($(BIN)/python -c 'from course_utils.data import path; print(path("chimpanzees"))') \
	PARITY_DATA_TROLLEY=$$($(BIN)/python -c 'from course_utils.data import path; print(path("trolley"))') \
	Rscript parity/fit_brms.R --out parity/brms_results.json

# The exercises: exercises/ is an nbgrader course directory (nbgrader needs the venv's
# programs on PATH). Options for grading: make grade GRADE_ARGS="--workers 1 --timeout 900".
release: venv
	cd exercises && PATH="$(abspath $(BIN)):$$PATH" nbgrader generate_assignment trolley --force

grade: data $(BWRAP)
	$(BIN)/python -m autograder grade trolley $(GRADE_ARGS)

reference: data
	$(BIN)/python -m autograder reference

bench-grading: data $(BWRAP)
	$(BIN)/python benchmarks/grading_class.py

bench-cluster: data $(BWRAP)
	$(BIN)/python benchmarks/grading_cluster.py

clean:
	rm -rf _build

clean-fits:
	rm -rf $(COURSE_FIT_CACHE)

lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet ".[book,test,grading]"
	{ sed -n '1,3p' requirements.lock; .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^multilevel-adventures'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf .lock-venv
