"""Find the structure files of a protein: an index table (accession -> file, chain), an AlphaFold model
named by its accession (``AF-<ACC>-F1-model_v4.pdb`` or ``<ACC>.pdb``), or a PDB entry of its DR PDB
cross-references (``1abc.cif``, ``1ABC.pdb.gz``, ``pdb1abc.ent``, ``1abc_A.pdb``) in the structures folder,
or in an uncompressed tarball of such files (the AlphaFold DB Swiss-Prot ``.tar``), read in place.

A tarball is scanned once (member headers only); a member cut off by the end of the file, or the point where a
damaged tarball stops being readable, is recorded in :attr:`StructureFinder.problems` (name, reason) and
skipped."""

from __future__ import annotations

import csv
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from sepit.data.records import ProteinRecord
from sepit.data.structure import AF_NAME, StructureSource, TarMember, structure_for_sequence
from sepit.errors import InputFormatError, StructureError
from sepit.io_utils import open_text

STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".pdb.gz", ".ent.gz", ".cif.gz", ".mmcif.gz")
_PDB_NAME = re.compile(r"^(?:pdb)?([0-9][a-z0-9]{3})(?:_([A-Za-z0-9]+))?$", re.IGNORECASE)
_ACC_NAME = re.compile(r"^([OPQ][0-9][A-Z0-9]{3}[0-9]|[A-NR-Z][0-9](?:[A-Z][A-Z0-9]{2}[0-9]){1,2})$")


@dataclass(frozen=True)
class StructureCandidate:
    """A file to try: ``kind`` is index, alphafold or pdb; ``chain`` None = best matching chain."""

    path: Path | TarMember
    kind: str
    chain: str | None = None

    def source(self, chain: str) -> str:
        """``structure_source`` value: ``alphafold:AF-P69905-F1-model_v4.pdb``, ``pdb:1ABC:A``,
        ``index:theseus/1abc_A.pdb.gz:A``."""
        if self.kind == "alphafold":
            return f"alphafold:{self.path.name}"
        if self.kind == "pdb":
            return f"pdb:{_PDB_NAME.match(_stem(self.path)).group(1).upper()}:{chain}"
        return f"index:{self.path.name}:{chain}"


class StructureFinder:
    """Scans ``root`` once (a folder, recursively, or a ``.tar`` file) and an optional index TSV (columns
    ``accession``, ``file``, optional ``chain``; file paths relative to the index's folder, else to ``root``)."""

    def __init__(self, root: str | Path | None = None, index: str | Path | None = None):
        self.alphafold: dict[str, list[StructureSource]] = {}
        self.pdb: dict[str, list[tuple[StructureSource, str | None]]] = {}
        self.index: dict[str, list[tuple[Path, str | None]]] = {}
        self.problems: list[tuple[str, str]] = []  # (file or member, reason): skipped while scanning
        self.files = 0
        self.root = Path(root) if root else None
        if self.root is not None:
            if self.root.is_file() and tarfile.is_tarfile(self.root):
                self._scan_tar(self.root)
            elif not self.root.is_dir():
                raise InputFormatError(f"structures folder (or .tar of structure files) not found: {self.root}")
            else:
                for path in sorted(self.root.rglob("*")):
                    if path.is_file() and path.name.lower().endswith(STRUCTURE_SUFFIXES):
                        self._add(path)
        if index is not None:
            self._read_index(Path(index))

    def _scan_tar(self, tar: Path) -> None:
        """Index the structure members of an uncompressed tarball by offset (headers only, no extraction)."""
        size = tar.stat().st_size
        try:
            with tarfile.open(tar, "r:") as tf:
                for info in tf:
                    if not info.isfile() or not info.name.lower().endswith(STRUCTURE_SUFFIXES):
                        continue
                    if info.offset_data + info.size > size:
                        self.problems.append((f"{tar}:{info.name}", "truncated tarball member (file ends inside it)"))
                        continue
                    self._add(TarMember(tar, info.name, info.offset_data, info.size))
        except tarfile.CompressionError as err:
            raise InputFormatError(f"{tar}: compressed tarballs cannot be read in place ({err}); use an"
                                   " uncompressed .tar of .pdb.gz/.cif.gz files like AlphaFold DB's") from None
        except (tarfile.ReadError, EOFError, OSError) as err:
            last = self.files and "after the members indexed so far"
            self.problems.append((str(tar), f"unreadable tarball, stopped reading {last or 'at the start'} ({err})"))

    def _add(self, path: StructureSource) -> None:
        self.files += 1
        stem = _stem(path)
        af = AF_NAME.match(path.name)
        if af or _ACC_NAME.match(stem):
            self.alphafold.setdefault(af.group(1) if af else stem, []).append(path)
            return
        pdb = _PDB_NAME.match(stem)
        if pdb:
            self.pdb.setdefault(pdb.group(1).upper(), []).append((path, pdb.group(2)))

    def _read_index(self, index: Path) -> None:
        with open_text(index) as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            if not reader.fieldnames or not {"accession", "file"} <= set(reader.fieldnames):
                raise InputFormatError(f"{index}: structure index needs 'accession' and 'file' columns"
                                       f" (tab-separated), got {reader.fieldnames}")
            for lineno, row in enumerate(reader, 2):
                path = self._resolve(index, row["file"] or "")
                if path is None:
                    raise InputFormatError(f"{index}:{lineno}: structure file {row['file']!r} not found")
                self.index.setdefault(row["accession"].strip(), []).append((path, row.get("chain") or None))

    def _resolve(self, index: Path, name: str) -> Path | None:
        for base in (index.parent, self.root):
            if base is not None and name and (base / name).is_file():
                return base / name
        return None

    def candidates(self, rec: ProteinRecord) -> list[StructureCandidate]:
        """Files to try for ``rec``, best first: index entries, AlphaFold models, PDB cross-references."""
        out = [StructureCandidate(p, "index", c) for acc in rec.accessions or [rec.accession]
               for p, c in self.index.get(acc, [])]
        out += [StructureCandidate(p, "alphafold") for acc in rec.accessions or [rec.accession]
                for p in self.alphafold.get(acc, [])]
        for xref in rec.xrefs:
            if xref.db != "PDB":
                continue
            chains = xref.pdb_chains()
            for path, file_chain in self.pdb.get(xref.id.upper(), []):
                if file_chain is None or not chains or file_chain in chains:
                    out.append(StructureCandidate(path, "pdb", file_chain or (chains[0] if chains else None)))
        unique: dict[Path, StructureCandidate] = {}
        for cand in out:
            unique.setdefault(cand.path, cand)
        return list(unique.values())


def parse_structure(task: tuple[str, str, list[StructureCandidate]], min_identity: float) -> tuple:
    """One protein's structure (run in a worker process by the build): ``task`` = (accession, sequence,
    candidates); returns (coords [L,3] or None, pLDDT [L] or None, structure_source, [(file, reason) of the
    candidates tried before that failed]). The first candidate that reads and aligns wins."""
    _, sequence, candidates = task
    failures = []
    for cand in candidates:
        try:
            res = structure_for_sequence(cand.path, sequence, chain=cand.chain, min_identity=min_identity)
        except StructureError as err:
            failures.append((str(cand.path), str(err).split(": ", 1)[-1]))
            continue
        return res.coords_L3, res.plddt_L, cand.source(res.chain), failures
    return None, None, "", failures


def _stem(path: StructureSource) -> str:
    name = path.name
    for suffix in sorted(STRUCTURE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name.rsplit(".", 1)[0]
