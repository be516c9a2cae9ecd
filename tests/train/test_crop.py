"""Cropping long proteins for training: the window (start or random), coordinates kept aligned with the residues,
crops counted, and the config key checked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sepit.data.store import ProteinEntry
from sepit.errors import ConfigError
from sepit.train.config import load_train_config
from sepit.train.data import CropCounter, ProteinCropper, crop

SEQ = "ACDEFGHIKLMNPQRSTVWY" * 2  # 40 residues, each position recognisable


def _entry(seq: str = SEQ) -> ProteinEntry:
    n = len(seq)
    coords = np.arange(n * 3, dtype=np.float32).reshape(n, 3)  # row i = (3i, 3i+1, 3i+2)
    return ProteinEntry("P1", seq, coords, np.arange(n, dtype=np.float32), "test")


def _start_of(seq: str, coords, plddt) -> int:
    start = int(plddt[0])
    assert SEQ[start:start + len(seq)] == seq and np.array_equal(coords[:, 0], 3 * plddt)
    return start


def test_start_window_keeps_the_first_residues():
    seq, coords, plddt = crop(_entry(), 16)
    assert seq == SEQ[:16] and _start_of(seq, coords, plddt) == 0
    assert crop(_entry("MKV"), 16)[0] == "MKV"


def test_random_window_is_aligned_varied_and_seeded():
    torch.manual_seed(0)
    starts = [_start_of(*crop(_entry(), 16, "random")) for _ in range(40)]
    assert all(0 <= s <= len(SEQ) - 16 for s in starts) and len(set(starts)) > 5
    torch.manual_seed(0)
    assert [_start_of(*crop(_entry(), 16, "random")) for _ in range(40)] == starts
    assert crop(_entry("MKV"), 16, "random")[0] == "MKV"  # short proteins are never cut


class _Store:
    def __init__(self, entries, spans=None):
        self.entries = {e.accession: e for e in entries}
        self.spans = spans or {}

    def protein(self, accession):
        return self.entries[accession]

    def feature_spans(self, accession):
        return self.spans.get(accession, [])


def test_cropper_counts_crops_and_residues():
    entries = [ProteinEntry(f"P{i}", "M" * n, None, None, "") for i, n in enumerate((10, 30, 12, 50))]
    cropper = ProteinCropper(_Store(entries), max_residues=12, structure_dropout=0.0)
    sequences, coords, plddt = cropper([{"accession": e.accession} for e in entries])
    assert [len(s) for s in sequences] == [10, 12, 12, 12] and coords == [None] * 4 and plddt == [None] * 4
    assert cropper.counter == CropCounter(proteins=4, cropped=2, residues_dropped=(30 - 12) + (50 - 12))
    cropper([{"accession": "P1"}])
    assert cropper.counter.as_log() == {"crop_proteins_seen": 5, "crop_cropped": 3, "crop_residues_dropped": 74}


def test_window_is_a_checked_config_key(tmp_path):
    cfg = load_train_config("debug", ["stage1.data.crop_window=random"])
    assert cfg.stage1.data.crop_window == "random" and cfg.stage0.data.crop_window == "start"
    with pytest.raises(ConfigError, match="crop_window"):
        load_train_config("debug", ["stage1.data.crop_window=middle"])
    assert load_train_config("debug", ["stage1.data.crop_window=features"]).stage1.data.crop_window == "features"
    with pytest.raises(ConfigError, match="crop window"):
        ProteinCropper(_Store([]), 12, window="middle")


def test_features_window_is_centred_on_an_annotated_feature():
    spans = [(30, 34), (10, 12)]  # centres 32 and 11 -> starts 32 - 8 = 24 (the last valid start) and 11 - 8 = 3
    torch.manual_seed(0)
    starts = {_start_of(*crop(_entry(), 16, "features", spans)) for _ in range(30)}
    assert starts == {24, 3}
    assert _start_of(*crop(_entry(), 16, "features", [(0, 2)])) == 0  # clamped at the protein's start
    torch.manual_seed(1)
    fallback = {_start_of(*crop(_entry(), 16, "features", [])) for _ in range(30)}
    assert len(fallback) > 5  # no feature: a random window


def test_cropper_reads_the_spans_from_the_store():
    store = _Store([_entry()], {"P1": [(30, 34)]})
    cropper = ProteinCropper(store, max_residues=16, window="features")
    (seq,), (coords,), (plddt,) = cropper([{"accession": "P1"}])
    assert _start_of(seq, coords, plddt) == 24 and seq.startswith(SEQ[24:28])
