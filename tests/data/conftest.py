"""Fixtures of the data tests: small hand-written files under fixtures/."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_fixtures import FIXTURES


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
