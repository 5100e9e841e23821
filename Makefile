# grist: every target creates the virtual environment first when it is missing,
# so `make corpus` and `make test` work as the very first command on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RECIPE ?= recipes/default.yaml
WORKERS ?= 2

.PHONY: setup corpus train sweep sweep-dropout scaling ablate test bench bench-setup-datatrove lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,ray,s3]'
	touch $(STAMP)

corpus: $(STAMP)
	$(BIN)/grist corpus $(RECIPE)

# The default model trains on the default corpus, built first when it is missing. A second
# `make train` continues an interrupted run, or says the run is finished and how to start over.
out/default/manifest.json: | $(STAMP)
	$(MAKE) corpus

train: $(STAMP) out/default/manifest.json
	$(BIN)/grist train recipes/train_default.yaml --resume=auto

# Experiments (grist sweep / scaling): many short trainings on the default corpus, under
# out/experiments/<name>/. Run again, a target keeps the runs it finished and continues the rest.
# `make sweep SWEEP=model.dropout=0,0.1,0.2` sweeps another key (any config key, dotted).
SWEEP ?= optim.lr=3e-4,1e-3,3e-3,1e-2,3e-2,1e-1,3e-1
sweep: $(STAMP) out/default/manifest.json
	$(BIN)/grist sweep recipes/train_small.yaml $(SWEEP)

# Overfitting and dropout: train and validation curves with and without dropout, 20 epochs of a
# 60k-token sample.
sweep-dropout: $(STAMP) out/default/manifest.json
	$(BIN)/grist sweep recipes/train_small.yaml model.dropout=0,0.2 max_train_tokens=60000 \
		max_steps=300 eval.every=20 --name dropout-small-sample

scaling: $(STAMP) out/default/manifest.json
	$(BIN)/grist scaling recipes/train_small.yaml

# What each step group of the default recipe is worth: raw, the groups added in recipe order, full
# and each group left out, one small model per distinct corpus and seed (3), bits per byte on a fixed
# held-out eval set (its own corpora, no need for out/default). `make ablate ABLATE="--train max_steps=30"` for a shorter one.
ABLATE ?=
ablate: $(STAMP)
	$(BIN)/grist ablate recipes/default.yaml $(ABLATE)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Every bench runs even when an earlier one misses a floor; the target fails if any did.
bench: $(STAMP)
	@status=0; \
	$(BIN)/python -m bench.pipeline_bench --workers $(WORKERS) || status=1; \
	$(BIN)/python -m bench.minhash_bench --workers $(WORKERS) || status=1; \
	$(BIN)/python -m bench.scale_bench --workers $(WORKERS) || status=1; \
	$(BIN)/python -m bench.decontam_bench || status=1; \
	$(BIN)/python -m bench.quality_bench || status=1; \
	$(BIN)/python -m bench.filter_eval --split test || status=1; \
	$(BIN)/python -m bench.datatrove_compare || status=1; \
	$(BIN)/python -m bench.train_bench || status=1; \
	$(BIN)/python -m pytest -q -m slow || status=1; \
	exit $$status

# datatrove 0.10.1 in its own virtualenv (.venv-datatrove/), for bench.datatrove_compare, which
# also creates it on first use: its `processing` extra pins trafilatura < 1.12, grist needs >= 1.12.
bench-setup-datatrove: $(STAMP)
	$(BIN)/python -m bench.datatrove_compare --setup-only

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf out/ .pytest_cache
