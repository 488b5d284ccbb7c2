"""Fixtures: one offline preview per committed stack, computed once per test session."""
from __future__ import annotations

import functools

import pytest

from secstack import preview as preview_mod

STACKS = ("dev", "staging", "prod")


@functools.cache
def rendered(stack: str) -> preview_mod.Preview:
    return preview_mod.run(stack)


@pytest.fixture(params=STACKS)
def stack_preview(request) -> preview_mod.Preview:
    return rendered(request.param)


@pytest.fixture
def prod_preview() -> preview_mod.Preview:
    return rendered("prod")
