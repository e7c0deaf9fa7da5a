# textbench — the two commands users need are `make repro` and `make test` (see README).
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# DVC stage commands call `textbench`/`dvc`: find them in the venv without activating it.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup setup-browser repro test lock

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel is on disk here; an unpinned torch pulls GBs of CUDA.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[offline,dev]"
	touch $@

setup: $(VENV)/.installed  ## create .venv and install the locked dependencies

setup-browser:  ## Debian's Chromium for the report and web-page browser tests (root, apt)
	# chromium, and a CJK font so the report's figures and pages show Chinese class names (THUCNews)
	command -v chromium >/dev/null && fc-list | grep -qi -e wenquanyi -e cjk || \
	  { apt-get update -q && apt-get install -y -q chromium fonts-wqy-microhei; }

repro: setup  ## run the default pipeline end to end (dvc repro)
	$(VENV)/bin/dvc repro

test: setup  ## run the test suite
	$(VENV)/bin/pytest -q

lock:  ## refresh constraints.txt from the current .venv
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt
