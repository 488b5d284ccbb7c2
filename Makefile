# secstack: `make preview` renders a stack offline, `make test` runs the whole suite.
PYTHON ?= .venv/bin/python
STACK ?= dev
SECSTACK_SHARED ?= $(abspath ../shared)
export SECSTACK_SHARED

.PHONY: install preview test bench clean

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
