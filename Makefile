# secstack: `make preview` renders a stack offline, `make test` runs the whole suite.
PYTHON ?= .venv/bin/python
STACK ?= dev
SECSTACK_SHARED ?= $(abspath ../shared)
export SECSTACK_SHARED

.PHONY: install preview test bench clean graph schema report

.venv/bin/python:
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip

install: .venv/bin/python
	.venv/bin/pip install --quiet -e '.[test]'

preview: install
	.venv/bin/secstack preview $(STACK)

test: install
	$(PYTHON) -m pytest

bench: install
	$(PYTHON) benchmarks/preview.py

clean:
	rm -rf out .pytest_cache

# The README's picture of the prod stack (tests/secstack/test_graph.py fails when these are stale).
graph: install
	.venv/bin/secstack graph prod --format dot --out docs/stack-prod.dot
	.venv/bin/secstack graph prod --format mermaid --out docs/stack-prod.mmd
	.venv/bin/secstack graph prod --format svg --out docs/stack-prod.svg

# The component package schema (tests/components/test_package.py fails when components/schema.json drifts).
schema: install
	$(PYTHON) -m components.package > components/schema.json

report: install
	.venv/bin/secstack report $(STACK)
