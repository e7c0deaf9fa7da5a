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

# Where torch's wheel comes from (its version is constraints.txt's): the CUDA 12.6 builds where
# nvidia-smi is found, the CPU-only builds elsewhere (no GBs of CUDA libraries on a laptop or a CI
# runner). `make setup TORCH_INDEX=https://download.pytorch.org/whl/cu130` picks another build;
# `TORCH_INDEX=` (empty) takes pip's own index: PyPI's Linux wheel is a CUDA 13 build.
TORCH_INDEX ?= https://download.pytorch.org/whl/$(if $(shell command -v nvidia-smi 2>/dev/null),cu126,cpu)

.PHONY: setup setup-browser repro test test-all lint lock lock-check

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch alone from its index (its dependencies come from PyPI below). Where that index cannot be
	# reached, pip retries, then takes the wheel its own settings offer (a find-links folder, say).
	$(PY) -m pip install -q --no-deps -c constraints.txt torch $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -c constraints.txt -e ".[offline,dev]"
	touch $@

setup: $(VENV)/.installed  ## create .venv and install the locked dependencies

setup-browser:  ## Debian's Chromium for the report and web-page browser tests (root, apt)
	# chromium, and a CJK font so the report's figures and pages show Chinese class names (THUCNews)
	command -v chromium >/dev/null && fc-list | grep -qi -e wenquanyi -e cjk || \
	  { apt-get update -q && apt-get install -y -q chromium fonts-wqy-microhei; }

repro: setup  ## run the default pipeline end to end (dvc repro)
	$(VENV)/bin/dvc repro

test: setup  ## the fast tier (about two minutes): every test not marked slow
	$(VENV)/bin/pytest -q -m "not slow"

test-all: test  ## every test: `make test` (the fast tier), then the slow one (browser, load, DVC processes, real corpora, longer trainings)
	$(VENV)/bin/pytest -q -m slow

lint: setup  ## ruff: lint, and check the formatting (`ruff format` applies it)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

lock:  ## refresh constraints.txt from the current .venv (local versions such as torch's +cpu dropped)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' | sed -E 's/\+[A-Za-z0-9.]+$$//' > constraints.txt

lock-check: setup  ## resolve the lock from PyPI alone, without this machine's pip settings (torch: PyPI's CUDA build); installs nothing
	env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(PY) -m pip install -q --dry-run --ignore-installed \
	  -c constraints.txt -e ".[offline,dev]"
