# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Every step is idempotent: it checks a stamp and skips work already done.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
SYSDEPS_STAMP := $(VENV)/.sysdeps
# System packages the embedded-benchmark renderer needs (FluidSynth + two SoundFonts).
APT_PACKAGES := libfluidsynth3 fluid-soundfont-gm minuet-data
PYTEST_ARGS ?= -n 2
HEAR_VALIDATOR := hearvalidator==2021.0.2
export PYTHONUNBUFFERED := 1

.PHONY: demo test test-all bench claims setup sysdeps venv data notebooks-sync lab clean-runs help

help:
	@echo "make demo   - set up, render the embedded benchmark, pretrain + probe the demo models"
	@echo "make test   - set up, run the test suite (slow paths in smoke form)"
	@echo "make bench  - run benchmarks/ and write benchmarks/results.json"
	@echo "make lab    - open JupyterLab on notebooks/"
	@echo "make claims - run the paper's claims at the demo scale; write figures/claims.md (hours; resumable)"

$(VENV)/bin/python:
	@echo ">> creating virtualenv $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	@echo ">> installing the workbench and its pinned stack into $(VENV) (first time: several minutes, torch is large)"
	$(PIP) install --progress-bar off -e '.[test]'
	@# the official HEAR validator, without TensorFlow (tests/test_hear.py runs its checks on our module)
	$(PIP) install --progress-bar off --no-deps $(HEAR_VALIDATOR)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

$(SYSDEPS_STAMP): | $(VENV)/bin/python
	@if ldconfig -p | grep -q libfluidsynth.so.3 && [ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] \
	    && ls /usr/share/minuet/soundfonts/*.sf2 >/dev/null 2>&1; then \
	  echo ">> system packages present ($(APT_PACKAGES))"; \
	else \
	  echo ">> installing system packages: $(APT_PACKAGES)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES); \
	fi
	touch $(SYSDEPS_STAMP)

sysdeps: $(SYSDEPS_STAMP)

setup: venv sysdeps

data: setup
	$(PY) -m workbench data render --scale demo

demo: setup
	$(PY) -m workbench demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS) tests

test-all: setup
	$(PY) -m pytest $(PYTEST_ARGS) --run-slow tests

bench: setup
	$(PY) -m benchmarks

# every claim of the paper at the demo scale (resumable: finished cells in results/demo/ are skipped).
# CLAIMS_WORKERS runners share the grid, each with cores/N threads (two 1-thread trainings give
# 1.42x the throughput of one 2-thread training on 2 cores: benchmarks/contention.py "pair").
CLAIMS_WORKERS ?= 2
claims: setup
	$(PY) -m workbench claims --scale demo devices=$(CLAIMS_WORKERS)

notebooks-sync: setup
	$(VENV)/bin/jupytext --sync notebooks/*.py

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

clean-runs:
	@echo "runs/ holds finished runs; delete it by hand if you really mean it"
