"""Many proteins from a FASTA file (``sepit embed``, ``sepit ask --fasta``), each with its structure when a
structures folder holds one.

A protein's key is its FASTA id; a UniProt-style id (``sp|P69905|HBA_HUMAN``) also gives the accession
``P69905`` used to find AlphaFold models / index entries (:class:`sepit.data.matching.StructureFinder`), and a
file named after the id (``<id>.pdb``, ``<id>.cif.gz``, ...) is found too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sepit.data.matching import STRUCTURE_SUFFIXES, StructureFinder
from sepit.data.records import ProteinRecord, validate_sequence
from sepit.errors import InputFormatError, StructureError
from sepit.io_utils import open_text


@dataclass
class Protein:
    """One protein to process: ``id`` (unique key), sequence, optional aligned structure."""

    id: str
    sequence: str
    accession: str = ""
    coords: np.ndarray | None = None  # [L, 3] float32, NaN rows = no point
    plddt: np.ndarray | None = None  # [L] float32
    structure_source: str = ""
    structure_path: Path | None = None
    chain: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def has_structure(self) -> bool:
        return self.coords is not None and bool(np.isfinite(self.coords).all(axis=1).any())


def accession_of(record_id: str) -> str:
    """``sp|P69905|HBA_HUMAN`` -> ``P69905``; any other id is returned as is."""
    parts = record_id.split("|")
    return parts[1] if len(parts) >= 3 and parts[0] in ("sp", "tr") else record_id


def read_proteins(path: str | Path) -> list[Protein]:
    """Every record of a FASTA file; empty records, invalid residues and duplicate ids are errors naming the
    record (and, for duplicates, both line numbers)."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"FASTA file not found: {path}")
    records: list[tuple[str, int, list[str]]] = []  # (id, header line, sequence lines)
    seen: dict[str, int] = {}
    with open_text(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if line.startswith(">"):
                record_id = (line[1:].split() or [""])[0]
                if not record_id:
                    raise InputFormatError(f"{path}:{lineno}: header line without an id")
                if record_id in seen:
                    raise InputFormatError(f"{path}:{lineno}: duplicate id {record_id!r} (first at line "
                                           f"{seen[record_id]}); ids must be unique")
                seen[record_id] = lineno
                records.append((record_id, lineno, []))
            elif line:
                if not records:
                    raise InputFormatError(f"{path}:{lineno}: not a FASTA file (expected a '>' header line first)")
                records[-1][2].append(line)
    if not records:
        raise InputFormatError(f"{path}: no FASTA record")
    return [_protein(path, rid, lineno, "".join(lines)) for rid, lineno, lines in records]


def _protein(path: Path, record_id: str, lineno: int, sequence: str) -> Protein:
    where = f"{path}:{lineno}: record {record_id}"
    if not sequence:
        raise InputFormatError(f"{where}: empty sequence")
    return Protein(record_id, validate_sequence(sequence.rstrip("*"), where),  # a final stop codon is dropped
                   accession_of(record_id))


def attach_structures(proteins: list[Protein], folder: str | Path | None, min_identity: float = 0.9,
                      on_skip: Callable[[Protein, str], None] | None = None) -> None:
    """Give each protein the first structure in ``folder`` that reads and aligns (in place). A file that
    fails is noted on the protein (``notes``) and reported to ``on_skip``; the protein stays sequence-only."""
    if folder is None:
        return
    from sepit.data.structure import structure_for_sequence

    finder = StructureFinder(folder)
    by_stem = _files_by_stem(Path(folder))
    for protein in proteins:
        rec = ProteinRecord(accession=protein.accession, sequence=protein.sequence, accessions=[protein.accession])
        paths = [c.path for c in finder.candidates(rec)] + by_stem.get(protein.id, [])
        for path in dict.fromkeys(paths):
            try:
                res = structure_for_sequence(path, protein.sequence, min_identity=min_identity)
            except StructureError as err:
                protein.notes.append(str(err))
                if on_skip is not None:
                    on_skip(protein, str(err))
                continue
            protein.coords, protein.plddt = res.coords_L3, res.plddt_L
            protein.structure_source = f"{path.name}:{res.chain}"
            protein.structure_path, protein.chain = path, res.chain
            break


def _files_by_stem(folder: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        name = path.name
        suffix = next((s for s in sorted(STRUCTURE_SUFFIXES, key=len, reverse=True) if name.lower().endswith(s)),
                      None)
        if suffix and path.is_file():
            out.setdefault(name[: -len(suffix)], []).append(path)
    return out
