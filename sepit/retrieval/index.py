"""The reference index (``sepit index build``): annotated proteins of one split of a built dataset, searchable by
sequence. Folder layout::

    INDEX/meta.json       format, dataset path + fingerprint, split(s), split identity, counts, search backend
    INDEX/entries.json    accession -> {sequence, annotations: category -> text, labels: category -> [labels]}
    INDEX/targets.fasta   the reference sequences (ids = accessions)
    INDEX/mmseqs/targets  the MMseqs2 target database (when mmseqs is installed), built once, reused by queries

The build is atomic (:func:`sepit.io_utils.atomic_dir`) and cheap to redo. An index never includes the test split
unless asked to (``allow_test``); using an index with another dataset than the one it came from is an error.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from sepit.errors import SepitError
from sepit.io_utils import atomic_dir
from sepit.retrieval.search import Hit, MmseqsSearch, OpalSearch, create_mmseqs_db, mmseqs_exe

FORMAT = 1
# method "auto" (benchmarks/results/retrieval.md, 50k Swiss-Prot proteins): pyopal costs ~0.75 CPU s per query
# there and needs no index; MMseqs2 rebuilds its k-mer table per call (~15 CPU s) unless the index holds it
# precomputed (~0.9 CPU s per query). So MMseqs2 serves references above AUTO_OPAL_MAX proteins when its k-mer
# index is precomputed or when one call brings at least AUTO_MMSEQS_BATCH queries (the table build is shared).
AUTO_OPAL_MAX = 2000
AUTO_MMSEQS_BATCH = 32
METHODS = ("auto", "mmseqs", "opal")


class ReferenceIndexError(SepitError):
    """A missing, unreadable or stale reference index."""


@dataclass
class Entry:
    """One reference protein."""

    accession: str
    sequence: str
    annotations: dict[str, str] = field(default_factory=dict)  # category -> text (open answers, caption)
    labels: dict[str, list[str]] = field(default_factory=dict)  # category -> closed-set labels


def dataset_fingerprint(root: str | Path) -> str:
    """Hash of a built dataset's summary and table states (changes whenever the dataset is rebuilt)."""
    root = Path(root)
    digest = hashlib.sha256()
    for part in ("summary.json", "proteins/state.json", "instructions/state.json"):
        path = root / part
        digest.update(path.read_bytes() if path.is_file() else part.encode())
    return digest.hexdigest()[:16]


def split_identity(root: str | Path) -> float | None:
    """The homology split's identity threshold of a built dataset (None for a random split)."""
    import yaml

    path = Path(root) / "build.yaml"
    if not path.is_file():
        return None
    cfg = yaml.safe_load(path.read_text()) or {}
    return float(cfg.get("identity", 0.3)) if cfg.get("split") == "homology" else None


def dataset_entries(root: str | Path, splits: list[str]) -> list[Entry]:
    """Reference entries of the proteins of ``splits``: annotation text per category from their open and
    caption answers, closed-set labels from the proteins table."""
    from sepit.data.store import DatasetStore, rows_where

    store = DatasetStore(root)
    rows = rows_where(store.instructions(), "split", splits)
    entries: dict[str, Entry] = {}
    for acc, task, category, answer in zip(rows["accession"], rows["task"], rows["category"], rows["answer"],
                                           strict=True):
        if acc not in entries:
            entries[acc] = Entry(acc, store.protein(acc).sequence, labels=store.labels(acc))
        if task in ("open", "caption") and answer.strip():
            entries[acc].annotations.setdefault(category, answer.strip())
    return list(entries.values())


def write_index(out: str | Path, entries: list[Entry], meta: dict, method: str = "auto",
                overwrite: bool = False, mmseqs_index: bool = False) -> Path:
    """Write an index folder atomically; the MMseqs2 target database is built when the method wants it."""
    if method not in METHODS:
        raise SepitError(f"unknown search method {method!r} ({', '.join(METHODS)})")
    if not entries:
        raise SepitError("no proteins to index")
    if method == "mmseqs" and mmseqs_exe() is None:
        raise SepitError("mmseqs not found on PATH (install the Debian package 'mmseqs2' or use --method opal)")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "targets.fasta").write_text("".join(f">{e.accession}\n{e.sequence}\n" for e in entries))
        with_mmseqs = method == "mmseqs" or (method == "auto" and mmseqs_exe() is not None)
        if with_mmseqs:
            create_mmseqs_db(tmp / "targets.fasta", tmp / "mmseqs" / "targets", precompute=mmseqs_index)
        (tmp / "entries.json").write_text(json.dumps(
            {e.accession: {"sequence": e.sequence, "annotations": e.annotations, "labels": e.labels}
             for e in entries}))
        meta = {"format": FORMAT, **meta, "proteins": len(entries), "mmseqs": with_mmseqs,
                "mmseqs_index": with_mmseqs and mmseqs_index,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return Path(out)


def build_index(data: str | Path, out: str | Path, split: str = "train", allow_test: bool = False,
                method: str = "auto", overwrite: bool = False, mmseqs_index: bool = False) -> Path:
    """Index the proteins of ``split`` (comma-separated splits allowed) of a built dataset."""
    splits = [s.strip() for s in split.split(",") if s.strip()]
    unknown = [s for s in splits if s not in ("train", "valid", "test")]
    if not splits or unknown:
        raise SepitError(f"--split must name train, valid and/or test, got {split!r}")
    if "test" in splits and not allow_test:
        raise SepitError("an index of the test split would leak test annotations into evaluation; "
                         "pass --allow-test if that is really wanted")
    entries = dataset_entries(data, splits)
    if not entries:
        raise SepitError(f"{data}: no proteins in split {split!r}")
    meta = {"dataset": str(Path(data).resolve()), "fingerprint": dataset_fingerprint(data), "split": splits,
            "split_identity": split_identity(data)}
    return write_index(out, entries, meta, method, overwrite, mmseqs_index)


class ReferenceIndex:
    """A loaded index: entries in memory, search by the MMseqs2 database or pyopal."""

    def __init__(self, folder: str | Path, method: str = "auto", threads: int = 1):
        self.folder = Path(folder)
        meta_file = self.folder / "meta.json"
        if not meta_file.is_file():
            raise ReferenceIndexError(f"{self.folder}: not a sepit reference index (no meta.json); "
                              "build one with `sepit index build --data DATASET --out INDEX`")
        self.meta = json.loads(meta_file.read_text())
        if self.meta.get("format") != FORMAT:
            raise ReferenceIndexError(f"{self.folder}: index format {self.meta.get('format')} is not {FORMAT}; "
                                      "rebuild it")
        try:
            raw = json.loads((self.folder / "entries.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ReferenceIndexError(f"{self.folder}: unreadable entries.json ({err}); rebuild the index") from None
        self.entries = {acc: Entry(acc, e["sequence"], e["annotations"], e["labels"]) for acc, e in raw.items()}
        if method not in METHODS:
            raise SepitError(f"unknown search method {method!r} ({', '.join(METHODS)})")
        self.method, self.threads = method, threads
        self._searchers: dict = {}

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def splits(self) -> list[str]:
        return list(self.meta.get("split", []))

    def check_dataset(self, data: str | Path, split: str | None = None) -> None:
        """Error when the index came from another dataset (or an older build of it), or when it holds the
        split being evaluated (``split``) without having been built with it on purpose."""
        fingerprint = dataset_fingerprint(data)
        if fingerprint != self.meta.get("fingerprint"):
            raise ReferenceIndexError(f"index {self.folder} is stale: built from {self.meta.get('dataset')} "
                              f"(fingerprint {self.meta.get('fingerprint')}), not from {data} (fingerprint "
                              f"{fingerprint}); rebuild it with `sepit index build --data {data} --out {self.folder}`")
        if split and split != "train" and split in self.splits:
            raise ReferenceIndexError(f"index {self.folder} holds the {split!r} split it would be evaluated on; "
                              "build the index from the train split")

    def backend(self, n_queries: int = 1) -> str:
        """``mmseqs`` or ``opal`` for a call with this many queries (see AUTO_OPAL_MAX)."""
        if self.method != "auto":
            return self.method
        usable = self.meta.get("mmseqs") and mmseqs_exe() is not None and len(self) > AUTO_OPAL_MAX
        return "mmseqs" if usable and (self.meta.get("mmseqs_index") or n_queries >= AUTO_MMSEQS_BATCH) else "opal"

    def searcher(self, backend: str = "opal"):
        if backend not in self._searchers:
            if backend == "mmseqs":
                if not self.meta.get("mmseqs"):
                    raise ReferenceIndexError(f"{self.folder} has no MMseqs2 database (built without mmseqs); "
                                              "use method opal")
                self._searchers[backend] = MmseqsSearch(self.folder / "mmseqs" / "targets", self.threads)
            else:
                self._searchers[backend] = OpalSearch(list(self.entries), [e.sequence for e in self.entries.values()],
                                                      self.threads)
        return self._searchers[backend]

    def search(self, queries: dict[str, str], k: int = 3, exclude_self: bool = True,
               max_evalue: float | None = 10.0) -> dict[str, list[Hit]]:
        """Top-``k`` hits per query id; with ``exclude_self`` a query never finds its own accession."""
        return self.searcher(self.backend(len(queries))).search(queries, k, exclude_self, max_evalue)
