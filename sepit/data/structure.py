"""Structures (PDB, mmCIF, AlphaFold models; plain or gzipped) -> one C-alpha point per UniProt residue.

DESIGN section 3.1: the residue sequence of a chain is aligned (``Bio.Align.PairwiseAligner``, local,
BLOSUM62) to the UniProt sequence; UniProt residues with no aligned structure residue get a NaN point.
A chain whose sequence is the UniProt sequence (AlphaFold DB models) maps residue for residue without the
aligner, which would give the same (:func:`align_chain`).
Reading uses gemmi (first model, first alternate location, modified residues such as MSE mapped to their
parent amino acid, insertion codes kept in file order).
"""

from __future__ import annotations

import gzip
import math
import os
import re
import threading
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import gemmi
import numpy as np
from Bio.Align import PairwiseAligner, substitution_matrices

from sepit.errors import StructureError

AF_NAME = re.compile(r"^AF-([A-Z0-9]+)-F\d+-model_v\d+", re.IGNORECASE)


@dataclass(frozen=True)
class TarMember:
    """A structure file inside an uncompressed tarball (AlphaFold DB style), read in place without
    extraction: its data is ``size`` bytes at ``offset`` of ``tar``."""

    tar: Path
    member: str
    offset: int
    size: int

    @property
    def name(self) -> str:
        """Base name of the member (``AF-P69905-F1-model_v4.pdb.gz``)."""
        return self.member.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return f"{self.tar}:{self.member}"

    def read_bytes(self) -> bytes:
        """The member's bytes (gunzipped when named ``.gz``); :class:`StructureError` when truncated or corrupt.
        Read with ``pread`` on a descriptor of the tarball kept open by this process (:func:`_pread`)."""
        try:
            data = _pread(self.tar, self.size, self.offset)
        except OSError as err:
            raise StructureError(f"{self}: cannot read tarball member ({err})") from None
        if len(data) < self.size:
            raise StructureError(f"{self}: truncated tarball member ({len(data)} of {self.size} bytes)")
        if self.member.lower().endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as err:
                raise StructureError(f"{self}: corrupt gzip member ({err})") from None
        return data

    def read_text(self) -> str:
        """The member's text (:meth:`read_bytes` decoded as UTF-8, invalid bytes replaced)."""
        return self.read_bytes().decode("utf-8", errors="replace")


_TAR_FDS: dict[str, tuple[int, int, int]] = {}  # tarball path -> (fd, st_dev, st_ino), most recent last
_TAR_LOCK = threading.Lock()


def _new_lock_after_fork() -> None:
    global _TAR_LOCK
    _TAR_LOCK = threading.Lock()  # a forked child must not inherit the lock held by another thread


os.register_at_fork(after_in_child=_new_lock_after_fork)


def _pread(tar: Path, size: int, offset: int) -> bytes:
    """``size`` bytes at ``offset`` of ``tar``, read through a descriptor kept open by this process, so that
    reading a tarball member by member neither reopens it each time nor restarts the kernel's read-ahead. It
    is reopened when the path names another file (replaced since); at most 4 tarballs stay open. Positionless
    reads make it safe to share with forked processes."""
    key = str(tar)
    with _TAR_LOCK:
        st = os.stat(key)
        cached = _TAR_FDS.pop(key, None)
        if cached is not None and cached[1:] != (st.st_dev, st.st_ino):
            os.close(cached[0])
            cached = None
        if cached is None:
            fd = os.open(key, os.O_RDONLY)
            fst = os.fstat(fd)
            cached = (fd, fst.st_dev, fst.st_ino)
        _TAR_FDS[key] = cached
        while len(_TAR_FDS) > 4:
            os.close(_TAR_FDS.pop(next(iter(_TAR_FDS)))[0])
        return os.pread(cached[0], size, offset)


StructureSource = str | Path | TarMember


@dataclass
class ChainResidues:
    """Amino-acid residues of one chain in file order: ``sequence`` [N], ``ca_N3`` (NaN where no CA),
    ``bfactor_N`` (of the CA)."""

    name: str
    sequence: str
    ca_N3: np.ndarray
    bfactor_N: np.ndarray


@dataclass
class StructureResult:
    """Per-UniProt-residue points: ``coords_L3`` float32 (NaN rows = no point), ``plddt_L`` (AlphaFold only)."""

    coords_L3: np.ndarray
    plddt_L: np.ndarray | None
    chain: str
    identity: float
    n_points: int


def read_chains(path: StructureSource) -> dict[str, ChainResidues]:
    """Read the first model of a structure file (or tarball member); return its protein chains by name.

    Raises :class:`StructureError` naming the file when it is missing, unreadable, of the wrong format or
    holds no amino-acid residue.
    """
    path = path if isinstance(path, TarMember) else Path(path)
    if isinstance(path, Path) and not path.is_file():
        raise StructureError(f"structure file not found: {path}")
    if (path.size if isinstance(path, TarMember) else path.stat().st_size) == 0:
        raise StructureError(f"{path}: empty structure file")
    try:
        st = _read_member(path) if isinstance(path, TarMember) else _read(path)
    except (RuntimeError, ValueError, OSError) as err:
        raise StructureError(f"{path}: cannot read structure ({err})") from None
    if len(st) == 0:
        raise StructureError(f"{path}: no model in file (wrong format or empty?)")
    chains = {}
    for chain in st[0]:
        residues = _chain_residues(chain)
        if residues is not None and chain.name not in chains:
            chains[chain.name] = residues
    if not chains:
        raise StructureError(f"{path}: no amino-acid residues found (wrong format or not a protein?)")
    return chains


def _read(path: Path) -> gemmi.Structure:
    try:
        return gemmi.read_structure(str(path), merge_chain_parts=True)
    except RuntimeError as err:
        if "charge" not in str(err):
            raise
        # some files (e.g. SCOP/ASTRAL domains) put non-PDB text in the charge columns 79-80: ignore them
        return gemmi.read_pdb(str(path), max_line_length=78)


def _read_member(member: TarMember) -> gemmi.Structure:
    data = member.read_bytes()
    # gemmi takes the bytes as they are: ASCII (structure files nearly always are) needs no decoding, the rest
    # is read as before, UTF-8 with invalid bytes replaced
    text = data if data.isascii() else data.decode("utf-8", errors="replace")
    name = member.name.lower().removesuffix(".gz")
    if name.endswith((".cif", ".mmcif")):
        st = gemmi.make_structure_from_block(gemmi.cif.read_string(text).sole_block())
    else:
        try:
            st = gemmi.read_pdb_string(text)
        except RuntimeError as err:
            if "charge" not in str(err):
                raise
            st = gemmi.read_pdb_string(text, max_line_length=78)  # as in _read
    st.merge_chain_parts()
    return st


def _chain_residues(chain: gemmi.Chain) -> ChainResidues | None:
    letters, xyz, bfac = [], [], []
    for res in chain.first_conformer():
        code = _one_letter(res.name)
        if code is None:
            continue
        atom = res.find_atom("CA", "*")
        letters.append(code)
        if atom is None:
            xyz += _NAN3
            bfac.append(math.nan)
        else:
            xyz += atom.pos.tolist()
            bfac.append(atom.b_iso)
    if not letters:
        return None
    return ChainResidues(chain.name, "".join(letters), np.asarray(xyz, np.float32).reshape(-1, 3),
                         np.asarray(bfac, np.float32))


_NAN3 = (math.nan, math.nan, math.nan)


@lru_cache(maxsize=512)
def _one_letter(name: str) -> str | None:
    """Residue name -> one-letter code (MSE -> M); None for waters, ligands and nucleotides."""
    info = gemmi.find_tabulated_residue(name)
    if info is None or not info.is_amino_acid():
        return None
    code = info.one_letter_code.upper()
    return code if code.isalpha() else "X"


@lru_cache(maxsize=1)
def _aligner() -> PairwiseAligner:
    # local: a chain may cover part of the protein, and carry tags or fused partners absent from it
    aligner = PairwiseAligner(mode="local", substitution_matrix=substitution_matrices.load("BLOSUM62"))
    aligner.open_gap_score, aligner.extend_gap_score = -10.0, -0.5
    aligner.wildcard = "X"
    return aligner


# Identical sequences of these residues need no alignment: in BLOSUM62 each of them scores at least 4 with
# itself and at most 3 with any other, and gaps cost, so the best local alignment of a sequence with itself
# is the whole diagonal, and the only one (any other pairing or gap scores less). AlphaFold DB models are
# exactly their UniProt sequence. tests/data/test_structure.py checks the matrix and the equality.
_NO_ALIGNMENT_NEEDED = re.compile(r"[ACDEFGHIKLMNPQRSTVWY]+")


def align_chain(chain_seq: str, sequence: str) -> tuple[np.ndarray, float]:
    """Map chain residues onto ``sequence``: returns ``index_L`` (chain residue index per protein residue,
    -1 = none) and the identity over aligned pairs."""
    if _same_sequence(chain_seq, sequence):
        return np.arange(len(sequence), dtype=np.int64), 1.0
    return _align(chain_seq, sequence)


def _same_sequence(chain_seq: str, sequence: str) -> bool:
    """True when ``chain_seq`` is ``sequence`` and the aligner would align them residue for residue."""
    return chain_seq == sequence and _NO_ALIGNMENT_NEEDED.fullmatch(sequence) is not None


def _align(chain_seq: str, sequence: str) -> tuple[np.ndarray, float]:
    """:func:`align_chain` by local alignment (``Bio.Align.PairwiseAligner``, BLOSUM62)."""
    index_L = np.full(len(sequence), -1, dtype=np.int64)
    try:
        alignment = _aligner().align(sequence, _aligner_safe(chain_seq))[0]
    except IndexError:  # nothing aligns (local score 0)
        return index_L, 0.0
    same = total = 0
    for (p0, p1), (c0, c1) in zip(*alignment.aligned, strict=True):
        index_L[p0:p1] = np.arange(c0, c1)
        total += p1 - p0
        same += sum(a == b for a, b in zip(sequence[p0:p1], chain_seq[c0:c1], strict=True))
    return index_L, (same / total if total else 0.0)


def _aligner_safe(seq: str) -> str:
    """BLOSUM62 lacks U/O: align them as X."""
    return seq.replace("U", "X").replace("O", "X")


def structure_for_sequence(path: StructureSource, sequence: str, chain: str | None = None,
                           plddt: bool | None = None, min_identity: float = 0.9,
                           min_points: int = 10) -> StructureResult:
    """C-alpha points of ``path`` aligned to ``sequence`` (the UniProt sequence).

    ``chain`` None picks the chain that best matches (a file with a single protein chain uses it whatever
    its name). ``plddt`` None reads pLDDT from the B-factor column
    when the file is named like an AlphaFold DB model; True forces it (ignored if all B-factors are 0).
    Raises :class:`StructureError` when no chain reaches ``min_identity`` over aligned residues, or when fewer
    than ``min_points`` residues (or all of a shorter protein) get a point.
    """
    path = path if isinstance(path, TarMember) else Path(path)
    chains = read_chains(path)
    if chain is not None and chain not in chains and len(chains) == 1:
        chain = next(iter(chains))  # single-chain model files often renamed the chain (e.g. AF2 models -> A)
    if chain is not None and chain not in chains:
        raise StructureError(f"{path}: no protein chain {chain!r} (chains: {sorted(chains)})")
    candidates = [chains[chain]] if chain is not None else list(chains.values())
    seq = _aligner_safe(sequence)
    best = max(((c, *align_chain(c.sequence, seq)) for c in candidates), key=lambda t: _rank(t[1], t[2]))
    residues, index_L, identity = best
    has = index_L >= 0
    n_points = int(np.isfinite(residues.ca_N3[index_L[has], 0]).sum())
    if identity < min_identity:
        raise StructureError(f"{path}: chain {residues.name} does not align to the protein sequence"
                             f" (identity {identity:.2f} < {min_identity})")
    if n_points < min(min_points, len(sequence)):
        raise StructureError(f"{path}: chain {residues.name} gives only {n_points} aligned C-alpha points"
                             f" (< {min_points})")
    coords_L3 = np.full((len(sequence), 3), np.nan, dtype=np.float32)
    coords_L3[has] = residues.ca_N3[index_L[has]]
    plddt_L = None
    use_plddt = plddt if plddt is not None else bool(AF_NAME.match(path.name))
    if use_plddt and np.nanmax(residues.bfactor_N, initial=0.0) > 0:
        plddt_L = np.full(len(sequence), np.nan, dtype=np.float32)
        plddt_L[has] = residues.bfactor_N[index_L[has]]
    return StructureResult(coords_L3, plddt_L, residues.name, identity, n_points)


def _rank(index_L: np.ndarray, identity: float) -> float:
    """Chain ranking: identical aligned residues (identity x aligned count)."""
    return identity * float((index_L >= 0).sum())
