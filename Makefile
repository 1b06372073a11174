# `make demo` and `make test` each set up .venv on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU build of PyTorch first, so nothing pulls a CUDA build later.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# setuptools reports every editable install with a warning box ("Editable installation"): noise here.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e ".[dev,ray,examples]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/robogate demo --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check robogate envs policies tests scripts examples
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python scripts/bench_sim.py
	$(BIN)/python scripts/bench_sweep.py

clean:
	rm -rf $(VENV) runs build *.egg-info
