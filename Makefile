# One entry point for everything: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
EXTRAS := sklearn,xgboost,lightgbm,http,aws,torch,service,dask,postgres,dev

.PHONY: install servers demo test lint typecheck pytest bench clean

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

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
