# crmkit quick start: `make demo` then `make test`. Needs only python3 (>= 3.11) and PyPI.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DB     ?= data/crm.duckdb
DEMO   ?= data/demo
MEMBERS ?= 200000
SEED   ?= 42
AS_OF  ?= 2026-06-30

.PHONY: demo test env clean bench

env: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,apps]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m crmkit demo-data $(DEMO) --members $(MEMBERS) --seed $(SEED)
	rm -f $(DB)
	$(PY) -m crmkit load $(DEMO)/* --db $(DB)
	$(PY) -m crmkit report --db $(DB) --as-of $(AS_OF) --out reports

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/load.py
	$(PY) benchmarks/clv_vs_lifetimes.py
	$(PY) benchmarks/segments.py

clean:
	rm -rf $(VENV) data/crm.duckdb $(DEMO) reports/*/
