"""The training tests run on a small real dataset (100 Swiss-Prot entries, random split; tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_dataset(tiny_store_dir):
    return tiny_store_dir


def debug_overrides(dataset, out_dir, *extra: str) -> list[str]:
    """Keep test runs to a few steps."""
    return [f"dataset={dataset}", f"output_dir={out_dir}", "stage0.data.max_items=8", "stage1.data.max_items=8",
            "stage2.data.max_items=8", "stage0.data.max_residues=64", "stage1.data.max_residues=64",
            "stage2.data.max_residues=64", "save_steps=100", *extra]
