# Two commands for a fresh machine:  `make demo` (the main job)  and  `make test`.
PY := .venv/bin/python
DP := .venv/bin/deltaprompts
N ?= 300
WORKERS ?= 2

.PHONY: setup demo test bench clean
setup: .venv/.installed

.venv/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

demo: setup  ## generate a 300-item suite over all three domains and write its gallery
	$(DP) generate --domain chart,document,scene --n $(N) --seed 0 --workers $(WORKERS) --out runs/demo --overwrite
	$(DP) show runs/demo

test: setup  ## the whole test suite
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

bench: setup
	$(PY) benchmarks/render.py

clean:
	rm -rf runs .pytest_cache
