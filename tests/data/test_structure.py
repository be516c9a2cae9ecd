"""Structure reading and alignment to the UniProt sequence (gemmi + PairwiseAligner)."""

from __future__ import annotations

import gzip

import gemmi
import numpy as np
import pytest
from data_fixtures import SEQ1, SEQ2

from sepit.data.matching import StructureFinder
from sepit.data.structure import read_chains, structure_for_sequence
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
