# plantpulse: the two commands of the quick start, and a few helpers.
#   make test   set up (.venv, system packages) and run ruff, mypy and pytest
#   make demo   set up and run the demo (see README.md)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# three pytest workers, one test file each at a time (module fixtures such as a browser stay shared): most
# tests wait on real processes (brokers, plants, central), so a third worker on two cores cuts the wall time
# (8.6 -> 6.5 min) with the CPU still half idle; PYTEST_WORKERS=0 runs in this process (easier to debug)
PYTEST_WORKERS ?= 3
DEMO_ARGS ?=

.PHONY: test demo lint typecheck pytest bench clean

test:
	@scripts/setup.sh test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

demo:
	@scripts/setup.sh demo
	$(BIN)/python -m plantpulse.demo $(DEMO_ARGS)

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest $(PYTEST_ARGS)

bench:
	@scripts/setup.sh test
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
