"""Shared fixtures. Real data lives in ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("SEPIT_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data()
    if not (path / "SOURCES.md").is_file():
        pytest.fail(f"real data folder not found at {path}; set SEPIT_SHARED_DATA")
    return path


@pytest.fixture(autouse=True, scope="session")
def _offline_hub():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    yield


@pytest.fixture(scope="session")
def tiny_store_dir(shared_data, tmp_path_factory):
    """A built dataset of 100 real Swiss-Prot entries (random split)."""
    from sepit.data.build import BuildConfig, build_dataset

    out = tmp_path_factory.mktemp("store") / "ds"
    flat = shared_data / "swissprot_flatfiles" / "libswiss_perl_SWISS100.dat.gz"
    build_dataset(BuildConfig(inputs=[str(flat)], out=str(out), split="random", seed=0, progress=False))
    return out
