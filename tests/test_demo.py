"""The demo: where data comes from, a clear stop when there is none, and step timings across resumed runs."""

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


def test_resumed_steps_keep_the_time_of_the_run_that_did_them(tmp_path):
    import json
    import time

    from sepit.demo import DemoPlan, step

    first = DemoPlan(tmp_path, tmp_path / "out")
    first.out.mkdir()
    first.load_timings()
    with step(first, "1. slow step", False):
        time.sleep(0.2)
    assert first.timings["1. slow step"] >= 0.2
    resumed = DemoPlan(tmp_path, tmp_path / "out")
    resumed.load_timings()
    with step(resumed, "1. slow step", True):  # already done: skipped in no time
        pass
    with step(resumed, "2. next step", False):
        pass
    saved = json.loads((tmp_path / "out" / "demo_timings.json").read_text())
    assert saved["1. slow step"] == first.timings["1. slow step"] and "2. next step" in saved
    reuse = DemoPlan(tmp_path, tmp_path / "out")  # e.g. scripts/ablation.py: reads the demo, writes no timings
    with step(reuse, "1. slow step", False):
        pass
    assert json.loads((tmp_path / "out" / "demo_timings.json").read_text()) == saved


def test_split_reaches_the_build_and_bad_splits_are_refused(shared_data, tmp_path, monkeypatch):
    import sepit.data.build as build
    from sepit.demo import DemoPlan, build_data, run_demo

    seen = []
    monkeypatch.setattr(build, "build_dataset", lambda cfg: seen.append(cfg))
    for split in ("random", "homology"):
        plan = DemoPlan(shared_data, tmp_path / split, split=split)
        plan.out.mkdir()
        build_data(plan)
    assert [c.split for c in seen] == ["random", "homology"]
    assert [c.identity for c in seen] == [0.3, 0.3]
    with pytest.raises(ConfigError, match="demo split must be 'homology' or 'random'"):
        run_demo(str(shared_data), str(tmp_path / "bad"), split="cluster")
    assert not (tmp_path / "bad").exists()
