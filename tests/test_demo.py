"""The demo's data step: where data comes from, and a clear stop when there is none."""

from __future__ import annotations

import pytest

from sepit.data.download import Endpoints
from sepit.demo import demo_inputs, download_sample, find_data
from sepit.errors import ConfigError


def test_shared_data_layout_is_recognised(shared_data):
    inputs, structures, index = demo_inputs(shared_data)
    assert any(p.endswith(".dat.gz") for p in inputs) and any("with_structure" in p for p in inputs)
    assert structures == shared_data / "structures" and index == structures / "INDEX.tsv"


def test_data_from_environment(shared_data, monkeypatch):
    monkeypatch.setenv("SEPIT_DATA", str(shared_data))
    assert find_data(None) == shared_data


def test_no_data_and_no_network_says_what_to_pass(tmp_path):
    closed = "http://127.0.0.1:9"  # discard port: connection refused
    with pytest.raises(ConfigError, match="--data DIR"):
        download_sample(tmp_path, Endpoints(uniprot=closed, alphafold=closed, rcsb=closed), retries=0)
    assert not any((tmp_path / "raw").rglob("*.dat"))
