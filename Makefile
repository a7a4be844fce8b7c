# Two entry points; both do all set-up themselves (idempotent, ~1 s when nothing to do).
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
CORES ?= 2

.PHONY: run test setup lint smoke clean-results

setup:
	@bash scripts/setup.sh

## The whole default pipeline, end to end, on the embedded corpus.
run: setup
	snakemake --profile workflow/profiles/default --cores $(CORES)
	@test -f results/report/README.md && cat results/report/README.md || true

## The test suite (includes the smoke pipeline).
test: setup
	python -m pytest -q

lint: setup
	ruff check src tests
	snakemake --lint

smoke: setup
	snakemake --profile workflow/profiles/default --configfile config/smoke.yaml --cores $(CORES)
