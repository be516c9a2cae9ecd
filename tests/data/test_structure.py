"""Structure reading and alignment to the UniProt sequence (gemmi + PairwiseAligner)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import gemmi
import numpy as np
import pytest
from data_fixtures import SEQ1, SEQ2

from sepit.data import structure
from sepit.data.matching import StructureFinder
from sepit.data.structure import TarMember, read_chains, structure_for_sequence
from sepit.data.uniprot import parse_flatfile
from sepit.errors import StructureError


def test_pdb_quirks(fixtures):
    """First model, first altloc, MSE -> M, insertion code kept in order, missing residue 10 -> NaN."""
    chains = read_chains(fixtures / "1xyz.pdb")
    assert chains["A"].sequence == SEQ1[:9] + SEQ1[10:20] and set(chains) == {"A", "B"}
    res = structure_for_sequence(fixtures / "1xyz.pdb", SEQ1)
    assert res.chain == "A" and res.identity == 1.0 and res.plddt_L is None
    assert res.coords_L3.shape == (len(SEQ1), 3) and res.coords_L3.dtype == np.float32
    has = ~np.isnan(res.coords_L3[:, 0])
    assert has.sum() == 19 and not has[9] and not has[20:].any()
    expected = np.arange(1, 21) * 3.8  # model 1 coordinates (model 2 is shifted by 100)
    assert np.allclose(res.coords_L3[has, 0], expected[np.arange(20) != 9], atol=1e-3)
    assert res.coords_L3[3, 0] == pytest.approx(4 * 3.8)  # altloc A, not B (+40)


def test_mmcif_gz_same_as_pdb(fixtures, tmp_path):
    st = gemmi.read_structure(str(fixtures / "1xyz.pdb"))
    st.setup_entities()
    cif = tmp_path / "1xyz.cif.gz"
    cif.write_bytes(gzip.compress(st.make_mmcif_document().as_string().encode()))
    a = structure_for_sequence(fixtures / "1xyz.pdb", SEQ1).coords_L3
    b = structure_for_sequence(cif, SEQ1).coords_L3
    assert np.array_equal(np.isnan(a), np.isnan(b)) and np.allclose(a[~np.isnan(a)], b[~np.isnan(b)])


def test_alphafold_plddt(fixtures):
    res = structure_for_sequence(fixtures / "AF-Q00002-F1-model_v4.pdb", SEQ2)
    assert res.plddt_L is not None and res.plddt_L[0] == pytest.approx(50.5) and res.n_points == len(SEQ2)


@pytest.mark.parametrize("content, match", [
    (b"", "empty structure file"),
    (b"this is not a structure\n", "no amino-acid residues|cannot read"),
    (b"data_x\n_cell.length_a 10\nloop_\n_atom_site.id\n", "no amino-acid|cannot read|no model"),
])
def test_bad_files_named(tmp_path, content, match):
    path = tmp_path / "bad.pdb"
    path.write_bytes(content)
    with pytest.raises(StructureError, match=match) as info:
        structure_for_sequence(path, SEQ1)
    assert "bad.pdb" in str(info.value)


def test_wrong_protein_and_chain(fixtures):
    with pytest.raises(StructureError, match="does not align"):
        structure_for_sequence(fixtures / "1xyz.pdb", "WWWWCCCCHHHHWWWWCCCCHHHH")
    with pytest.raises(StructureError, match="no protein chain 'Z'"):
        structure_for_sequence(fixtures / "1xyz.pdb", SEQ1, chain="Z")


def test_finder_by_accession_and_pdb_xref(fixtures):
    q1, q2 = list(parse_flatfile(fixtures / "mini.dat"))
    finder = StructureFinder(fixtures)
    cands = finder.candidates(q1)
    assert [(c.kind, c.path.name, c.chain) for c in cands] == [("pdb", "1xyz.pdb", "A")]
    assert cands[0].source("A") == "pdb:1XYZ:A"
    assert [c.source("A") for c in finder.candidates(q2)] == ["alphafold:AF-Q00002-F1-model_v4.pdb"]


def test_blosum62_aligns_an_identical_sequence_residue_for_residue():
    """What the no-alignment path of identical sequences rests on: each of the 20 standard residues scores
    more with itself (and > 0) than any pair of different ones, and every gap costs."""
    aligner = structure._aligner()
    matrix, letters = aligner.substitution_matrix, "ACDEFGHIKLMNPQRSTVWY"
    assert min(matrix[a][a] for a in letters) > max(0, *(matrix[a][b] for a in letters for b in letters if a != b))
    assert aligner.mode == "local" and aligner.open_gap_score < 0 and aligner.extend_gap_score < 0
    seq = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMK"
    index_L, identity = structure._align(seq, seq)
    assert identity == 1.0 and np.array_equal(index_L, np.arange(len(seq)))
    assert not structure._same_sequence(seq + "X", seq + "X") and not structure._same_sequence(seq, seq[1:])


REAL_FILES = ["prot2chat_afdb/O58276.pdb.gz", "prot2chat_afdb/O58787.pdb.gz", "prot2chat_afdb/P02739.pdb.gz",
              "prot2chat_afdb/Q18PI6.pdb.gz", "protssn/pdb_exp_ddg/1RN1-2.5-0.0.exp.pdb.gz",
              "theseus_examples/ldh/1bdm_A.pdb.gz"]


def _results(sources, sequences) -> list[tuple]:
    out = []
    for src, seq in zip(sources, sequences, strict=True):
        r = structure_for_sequence(src, seq)
        out.append((r.coords_L3, r.plddt_L, r.chain, r.identity, r.n_points))
    return out


def test_identical_sequence_path_gives_the_aligned_result(shared_data, tmp_path, monkeypatch):
    """Real structures, as files and as members of an AFDB-style tarball (pLDDT read): the path without
    alignment (chain sequence = UniProt sequence) stores exactly what the aligner's path stored."""
    root = shared_data / "structures"
    files, sequences = [], []
    for name in REAL_FILES:
        chains = read_chains(root / name)
        files.append(root / name)
        sequences.append(chains["C" if "C" in chains else "A"].sequence)  # 1RN1: the third of 3 chains
    tar = tmp_path / "afdb.tar"
    with tarfile.open(tar, "w") as tf:
        for i, path in enumerate(files):
            data = path.read_bytes()
            info = tarfile.TarInfo(f"swissprot/AF-P{i:04d}0-F1-model_v4.pdb.gz")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    members = [m for ms in StructureFinder(tar).alphafold.values() for m in ms]
    sources = files + sorted(members, key=lambda m: m.member)
    aligned, align = [], structure._align
    monkeypatch.setattr(structure, "_align", lambda c, s: aligned.append(c) or align(c, s))
    fast = _results(sources, sequences * 2)
    assert aligned and not set(aligned) & set(sequences)  # only 1RN1's other chains were aligned
    aligned.clear()
    monkeypatch.setattr(structure, "_same_sequence", lambda *a: False)
    slow = _results(sources, sequences * 2)
    assert set(sequences) <= set(aligned)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a[0], b[0])  # NaN rows in the same places
        assert (a[1] is None) == (b[1] is None) and (a[1] is None or np.array_equal(a[1], b[1], equal_nan=True))
        assert a[2:] == b[2:]
    assert [r[1] is not None for r in fast] == [False] * 6 + [True] * 6  # pLDDT: AlphaFold-named members
    assert np.isnan(fast[5][0][:, 0]).sum() == 1  # 1bdm: a residue without CA


def test_tar_member_read_after_the_tarball_is_replaced_and_non_ascii_text(fixtures, tmp_path):
    """The descriptor kept open per tarball follows a replaced file; non-ASCII text is decoded as before."""
    text = (fixtures / "1xyz.pdb").read_bytes()
    odd = b"REMARK   1 caf\xe9 \xff\n" + text

    def write(content: bytes) -> TarMember:
        new = tmp_path / "new.tar"
        with tarfile.open(new, "w") as tf:
            info = tarfile.TarInfo("1xyz.pdb.gz")
            data = gzip.compress(content)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        os.replace(new, tmp_path / "models.tar")
        return next(iter(StructureFinder(tmp_path / "models.tar").pdb.values()))[0][0]

    assert write(text).read_bytes() == text and set(read_chains(write(text))) == {"A", "B"}
    member = write(odd)
    assert member.read_bytes() == odd and member.read_text() == odd.decode("utf-8", errors="replace")
    st = gemmi.read_pdb_string(odd.decode("utf-8", errors="replace"))  # how members were always read
    st.merge_chain_parts()
    expected = {c.name: structure._chain_residues(c) for c in st[0]}
    got = read_chains(member)
    assert got.keys() == expected.keys()
    for name, chain in got.items():
        assert chain.sequence == expected[name].sequence
        np.testing.assert_array_equal(chain.ca_N3, expected[name].ca_N3)
        np.testing.assert_array_equal(chain.bfactor_N, expected[name].bfactor_N)
