"""Dataset store: write, reopen memory-mapped, O(1) access by accession."""

from __future__ import annotations

import numpy as np
import pytest

from sepit.data.store import DatasetStore, write_store
from sepit.errors import SepitError


def test_roundtrip(tmp_path):
    coords = np.arange(12, dtype=np.float32).reshape(4, 3)
    coords[1] = np.nan
    proteins = [
        {"accession": "P1", "sequence": "MKVL", "coords": coords, "plddt": np.array([90, 80, 70, 60]),
         "structure_source": "alphafold:AF-P1-F1-model_v4.pdb", "taxon_id": 9606,
         "labels": {"ec": ["2.7.11.1"], "go_cc": ["nucleus", "cytosol"]}},
        {"accession": "P2", "sequence": "MK", "coords": None, "plddt": None, "structure_source": ""},
    ]
    items = [{"id": "P1:0", "accession": "P1", "task": "closed", "category": "ec", "question": "Q?",
              "answer": "yes", "choices": ["yes", "no"], "split": "test"}]
    write_store(tmp_path, proteins, items, {"proteins": 2})
    store = DatasetStore(tmp_path)
    p1, p2 = store.protein("P1"), store.protein("P2")
    assert p1.sequence == "MKVL" and p1.coords.dtype == np.float32
    assert np.array_equal(np.isnan(p1.coords), np.isnan(coords)) and np.allclose(p1.coords[0], [0, 1, 2])
    assert p1.plddt.tolist() == [90, 80, 70, 60] and p1.structure_source.startswith("alphafold:")
    assert p2.coords is None and p2.plddt is None and p2.sequence == "MK"
    assert store.labels("P1") == {"ec": ["2.7.11.1"], "go_cc": ["nucleus", "cytosol"]} and store.labels("P2") == {}
    assert len(store.instructions("test")) == 1 and len(store.instructions("train")) == 0
    assert store.instructions()[0]["choices"] == ["yes", "no"] and store.summary == {"proteins": 2}
    with pytest.raises(KeyError, match="P9"):
        store.protein("P9")


def test_not_a_dataset(tmp_path):
    with pytest.raises(SepitError, match="not a built sepit dataset"):
        DatasetStore(tmp_path)


def test_empty_instructions(tmp_path):
    write_store(tmp_path, [{"accession": "P1", "sequence": "MK"}], [], {})
    store = DatasetStore(tmp_path)
    assert len(store.instructions()) == 0 and store.protein("P1").coords is None


def test_split_and_task_views_write_nothing_into_the_dataset_folder(tmp_path):
    """Views by split / task / sample (training, evaluation, retrieval) are in-memory indexes over the mapped
    table: the same rows, in order, as a plain loop over all items, and no cache file appears next to the data
    (``Dataset.filter`` / ``shuffle`` on a saved dataset write ``cache-*.arrow`` into its folder)."""
    from sepit.data.store import rows_where
    from sepit.retrieval.index import dataset_entries
    from sepit.train.config import DataSpec
    from sepit.train.data import instruction_items, protein_items

    proteins = [{"accession": f"P{i}", "sequence": "MKVLA" * (i + 1)} for i in range(6)]
    splits, tasks = ["train", "valid", "train", "test", "train", "train"], ["caption", "open", "closed"]
    items = [{"id": f"P{i}:{t}", "accession": f"P{i}", "task": task, "category": "function", "question": "Q?",
              "answer": f"a{i}{t}", "choices": [], "split": splits[i]}
             for i in range(6) for t, task in enumerate(tasks)]
    write_store(tmp_path, proteins, items, {})
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    store = DatasetStore(tmp_path)

    train = store.instructions("train")
    assert train["id"] == [i["id"] for i in items if i["split"] == "train"]
    open_train = rows_where(train, "task", ["open", "closed"])  # on top of the split's index
    assert open_train["id"] == [i["id"] for i in items if i["split"] == "train" and i["task"] != "caption"]
    assert len(store.instructions("nope")) == 0
    sample = instruction_items(store, DataSpec(split="train", tasks=["open"], max_items=2, max_residues=8), seed=0)
    assert len(sample) == 2 and set(sample["task"]) == {"open"}
    stage0 = protein_items(store, DataSpec(split="train", max_items=3), seed=0)
    assert len(set(stage0["accession"])) == 3 and set(stage0["accession"]) <= {"P0", "P2", "P4", "P5"}
    assert {e.accession for e in dataset_entries(tmp_path, ["valid", "test"])} == {"P1", "P3"}
    assert sorted(p.name for p in tmp_path.rglob("*")) == listing
