# `make demo` and `make test` each set up .venv on a fresh clone, with what each needs:
# the demo robogate alone, the tests robogate and its dev extras (pytest, ruff, Ray, lerobot-doctor).
# Each install leaves a stamp, so `make demo` then `make test` on one clone adds only the extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# setuptools reports every editable install with a warning box ("Editable installation"): noise here.
PIP_INSTALL := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet

WHEEL_VENV := .venv-wheel

.PHONY: demo test wheel-check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU build of PyTorch first, so nothing pulls a CUDA build later.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(PIP_INSTALL) -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PIP_INSTALL) -e ".[dev,examples]"
	touch $(DEV_STAMP)

demo: $(STAMP)
	$(BIN)/robogate demo --out runs/demo

test: $(DEV_STAMP)
	$(BIN)/ruff check robogate envs policies tests scripts examples
	$(BIN)/python -m pytest -q -n auto --dist loadfile
	$(MAKE) --no-print-directory wheel-check

# The wheel a user installs, in a fresh virtualenv, run from an empty folder: no source tree on the path.
wheel-check: $(STAMP)
	rm -rf build/wheel $(WHEEL_VENV)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir build/wheel .
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(WHEEL_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(WHEEL_VENV)/bin/python -m pip install --quiet build/wheel/robogate-*.whl
	cd "$$(mktemp -d)" && MPLBACKEND=Agg $(abspath $(WHEEL_VENV))/bin/python $(abspath tests/installed_loop.py)

bench: $(STAMP)
	$(BIN)/python scripts/bench_sim.py
	$(BIN)/python scripts/bench_sweep.py
	$(BIN)/python scripts/bench_policy_threads.py

clean:
	rm -rf $(VENV) $(WHEEL_VENV) runs build *.egg-info
