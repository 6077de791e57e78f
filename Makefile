# Two commands for a fresh machine:  `make demo` (the main job: the whole loop on the toy pair)  and  `make test`.
PY := .venv/bin/python
DP := .venv/bin/deltaprompts
N ?= 300
WORKERS ?= 2

.PHONY: setup demo gallery test bench clean
setup: .venv/.installed

.venv/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

demo: setup  ## the whole DeltaPrompts loop offline on the shipped toy pair, then split, exports and report
	$(DP) run examples/pipeline.toml --overwrite
	$(DP) split runs/pipeline-toy --eval-fraction 0.2
	$(DP) export runs/pipeline-toy --split train --format hf --out runs/pipeline-toy-export/hf --overwrite
	$(DP) export runs/pipeline-toy --split train --format messages --out runs/pipeline-toy-export/messages --overwrite
	$(DP) export runs/pipeline-toy --split eval --format lmms-eval --out runs/pipeline-toy-export/lmms-eval --overwrite
	$(DP) report runs/pipeline-toy

gallery: setup  ## generate a 300-item suite over all three domains and write its gallery
	$(DP) generate --domain chart,document,scene --n $(N) --seed 0 --workers $(WORKERS) --out runs/demo --overwrite
	$(DP) show runs/demo

test: setup  ## the whole test suite
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

bench: setup
	$(PY) benchmarks/render.py

clean:
	rm -rf runs .pytest_cache
