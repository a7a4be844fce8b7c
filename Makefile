# Two entry points; both do all set-up themselves (idempotent, ~1 s when nothing to do).
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
CORES ?= 2

.PHONY: run claim claim-seed claim-summary test setup lint smoke clean-results

setup:
	@bash scripts/setup.sh

## The whole default pipeline, end to end, on the embedded corpus.
run: setup
	snakemake --profile workflow/profiles/default --cores $(CORES)
	@test -f results/report/README.md && cat results/report/README.md || true

## The claim: the default under three training seeds (config/claim.yaml; resumable).
claim: setup
	snakemake --profile workflow/profiles/default --configfile config/claim.yaml --cores $(CORES)
	@test -f results/report/README.md && cat results/report/README.md || true

## One seed of the claim, trained, synthesized and scored (SEED=2345): the claim one
## session at a time; its per-item scores in results/metrics/systems/s<seed>/ are committed.
## The seed's scoring and token-statistics jobs are forced: in a fresh clone the committed
## scores have no Snakemake record, so they would pass for up to date and hide a change of
## params or code (the models behind them are not in git). Forcing them makes Snakemake build
## the missing models, wavs and tokens they read; in a resumed workspace only the scoring
## repeats (the judges' transcript caches make that cheap).
CLAIM_SEED_FORCED := score_seeded token_stats
claim-seed: setup
	@test -n "$(SEED)" || { echo "make claim-seed: give SEED=<one of config/claim.yaml's seeds>"; exit 2; }
	snakemake --profile workflow/profiles/default scores_s$(SEED) --forcerun $(CLAIM_SEED_FORCED) --configfile config/claim.yaml --cores $(CORES)

## The claim's summary from the scored rows present (committed or just made), retraining
## nothing: only the summarize rule may run. summary.json is the pipeline's output (the
## default run's, in dvc.lock); the claim's is kept beside it as claim_summary.json, the
## record the README's claim table cites.
claim-summary: setup
	snakemake --profile workflow/profiles/default results/metrics/summary.json --allowed-rules summarize --forcerun summarize --configfile config/claim.yaml --cores $(CORES)
	cp results/metrics/summary.json results/metrics/claim_summary.json.tmp && mv results/metrics/claim_summary.json.tmp results/metrics/claim_summary.json

## The test suite (includes the smoke pipeline).
test: setup
	python -m pytest -q

lint: setup
	ruff check src tests
	snakemake --lint

## The smoke configuration, in a throw-away copy of the checkout (SMOKE_DIR, default a new
## temporary directory): run here, it would overwrite the committed results/metrics/*.json
## with smoke figures (issue 21). The copy holds what a clone plus local edits holds.
smoke: setup
	@dir="$${SMOKE_DIR:-$$(mktemp -d -t e2etts-smoke.XXXXXX)}"; \
	git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$$dir" || exit 1; \
	echo "[smoke] running in $$dir (a copy: this checkout's results stay as committed)"; \
	cd "$$dir" && snakemake --profile workflow/profiles/default --configfile config/smoke.yaml --cores $(CORES)
