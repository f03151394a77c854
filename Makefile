# One entry point for everything: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
EXTRAS := sklearn,xgboost,lightgbm,http,aws,torch,service,dask,postgres,dev

.PHONY: install servers demo test lint typecheck pytest bench bench-peers clean

install: $(VENV)/.installed

# Re-run the install whenever the dependency list changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0  # CPU wheel; see the torch extra
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

# Model servers (MLServer, KServe, MLflow) for tests/test_servers_*.py, one venv each in
# .servers/ (their pins conflict with ours); idempotent. Without them those tests skip.
servers:
	bash .ci/servers.sh

demo: install
	$(VENV)/bin/sxai demo --force  # the demo folder is the demo's own: replace it

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# pytest exits 5 when it collects no test; that is not a failure of the suite itself.
pytest: install
	$(PY) -m pytest -n 2 -q; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || exit $$rc

test: lint typecheck pytest

bench: install
	$(PY) benchmarks/shapley.py

# shapiq >= 1.5 needs Python >= 3.12 (pyenv's 3.12.1 here): the peers get their own venv and
# meet ours only through ONNX bytes and results (benchmarks/shapley_peers.py).
PEERS_PYTHON ?= $(shell pyenv root 2>/dev/null)/versions/3.12.1/bin/python3.12
PEERS_VENV   ?= .venv-peers

$(PEERS_VENV)/.installed: benchmarks/peers/requirements.txt
	$(PEERS_PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet -r benchmarks/peers/requirements.txt
	touch $@

bench-peers: install $(PEERS_VENV)/.installed
	$(PY) benchmarks/shapley_peers.py

clean:
	rm -rf $(VENV) $(PEERS_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
