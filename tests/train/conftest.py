"""A small real dataset (100 Swiss-Prot entries, random split) built once for the training tests."""

from __future__ import annotations

import pytest

from sepit.data.build import BuildConfig, build_dataset


@pytest.fixture(scope="session")
def tiny_dataset(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("train-data") / "ds"
    flat = shared_data / "swissprot_flatfiles" / "libswiss_perl_SWISS100.dat.gz"
    build_dataset(BuildConfig(inputs=[str(flat)], out=str(out), split="random", seed=0, progress=False))
    return out


def debug_overrides(dataset, out_dir, *extra: str) -> list[str]:
    """Keep test runs to a few steps."""
    return [f"dataset={dataset}", f"output_dir={out_dir}", "stage0.data.max_items=8", "stage1.data.max_items=8",
            "stage2.data.max_items=8", "stage0.data.max_residues=64", "stage1.data.max_residues=64",
            "stage2.data.max_residues=64", "save_steps=100", *extra]
