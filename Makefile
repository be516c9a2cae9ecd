# The two set-up commands on a fresh machine: `make demo` (the main job) and `make test` (the tests).
PY ?= python3
SHARED_DATA := $(wildcard ../shared/data)
export SEPIT_DATA ?= $(SHARED_DATA)

.PHONY: install demo test lint
install:
	bash scripts/install.sh

demo: install
	sepit demo

test: install
	$(PY) -m ruff check sepit tests benchmarks scripts
	$(PY) -m pytest -q -p no:cacheprovider tests

lint:
	$(PY) -m ruff check sepit tests benchmarks scripts
