# crmkit quick start: `make demo` then `make test`. Needs only python3 (>= 3.11) and PyPI.
# Installs come from requirements.lock (the versions the tests passed with); `make lock` upgrades it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LOCK   := requirements.lock
LOCKVENV := .venv-lock
DB     ?= data/crm.duckdb
DEMO   ?= data/demo
MEMBERS ?= 200000
SEED   ?= 42
AS_OF  ?= 2026-06-30

.PHONY: demo test env clean bench lock

env: $(STAMP)

# Exactly the locked set (pip, setuptools and wheel included), then crmkit itself without resolving anything.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r $(LOCK)
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

# Upgrade the lock: resolve pyproject.toml afresh in a scratch venv, run the whole suite there,
# and rewrite $(LOCK) only when it passes. Then review `git diff $(LOCK)` and commit it.
lock:
	rm -rf $(LOCKVENV)
	$(PYTHON) -m venv $(LOCKVENV)
	$(LOCKVENV)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	$(LOCKVENV)/bin/python -m pip install --quiet -e '.[test,apps,spark]'
	CRMKIT_LOCKING=1 $(LOCKVENV)/bin/python -m pytest -q -p no:cacheprovider
	{ sed -n '/^#/p' $(LOCK); $(LOCKVENV)/bin/python -m pip freeze --all --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(LOCKVENV)

demo: $(STAMP)
	$(PY) -m crmkit demo-data $(DEMO) --members $(MEMBERS) --seed $(SEED)
	rm -f $(DB)
	$(PY) -m crmkit load $(DEMO)/* --db $(DB)
	$(PY) -m crmkit score $(DB) --as-of $(AS_OF)
	$(PY) -m crmkit report --db $(DB) --as-of $(AS_OF) --out reports

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/load.py
	$(PY) benchmarks/clv_vs_lifetimes.py
	$(PY) benchmarks/score_vs_lifetimes.py
	$(PY) benchmarks/segments.py

clean:
	rm -rf $(VENV) data/crm.duckdb $(DEMO) reports/*/
