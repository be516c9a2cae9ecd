"""Flat-file and TSV readers: fields, cleaning, bad input."""

from __future__ import annotations

import gzip

import pytest
from data_fixtures import SEQ1

from sepit.data.records import clean_text, split_locations
from sepit.data.tsv import parse_tsv
from sepit.data.uniprot import parse_flatfile
from sepit.errors import InputFormatError, SequenceError


def test_flatfile_fields(fixtures):
    first, second = list(parse_flatfile(fixtures / "mini.dat"))
    assert first.accession == "Q00001" and first.accessions == ["Q00001", "Q99991"]
    assert (first.entry_name, first.protein_name, first.gene) == ("TEST1_HUMAN", "Test kinase alpha", "TKA")
    assert first.organism == "Homo sapiens (Human)" and first.taxon_id == 9606 and first.sequence == SEQ1
    assert first.ec == ["2.7.11.1"]
    assert first.comment("FUNCTION") == ("Serine/threonine kinase that phosphorylates the test substrate. "
                                         "Required for test signalling.")
    assert len(first.comments) == 14  # every CC topic of interest
    assert first.go[1].id == "GO:0004674" and first.go[1].aspect == "MF"
    assert "Kinase" in first.keywords
    kinds = {f.type: f for f in first.features}
    assert set(kinds) == {"SIGNAL", "DOMAIN", "ACT_SITE", "TRANSMEM", "MOTIF"}  # HELIX dropped
    assert (kinds["DOMAIN"].start, kinds["DOMAIN"].end, kinds["DOMAIN"].note) == (3, 25, "Protein kinase")
    assert kinds["MOTIF"].note == "Nuclear localization signal" and kinds["MOTIF"].start == 28
    assert {x.db for x in first.xrefs} == {"PDB", "AlphaFoldDB", "Pfam", "InterPro"}
    assert first.xrefs[0].pdb_chains() == ["A"]
    assert second.features[0].note == "ABC transporter."  # old column layout, qualifier removed
    assert second.family == "major facilitator superfamily"


def test_flatfile_gzip_same(fixtures, tmp_path):
    gz = tmp_path / "mini.dat.gz"
    gz.write_bytes(gzip.compress((fixtures / "mini.dat").read_bytes()))
    assert [r.sequence for r in parse_flatfile(gz)] == [r.sequence for r in parse_flatfile(fixtures / "mini.dat")]


def test_clean_text():
    raw = "Binds DNA (PubMed:123, PubMed:456) {ECO:0000269|PubMed:123, ECO:0000250}. Nucleus (By similarity)."
    assert clean_text(raw) == "Binds DNA. Nucleus."
    assert split_locations("Cell membrane; Multi-pass membrane protein. Nucleus. Note=Moves.") == \
        ["Cell membrane", "Nucleus"]


def _corrupt(fixtures, tmp_path, old, new):
    path = tmp_path / "bad.dat"
    path.write_text((fixtures / "mini.dat").read_text().replace(old, new, 1))
    return path


def test_truncated_file_names_file_and_entry(fixtures, tmp_path):
    text = (fixtures / "mini.dat").read_text()
    path = tmp_path / "trunc.dat"
    path.write_text(text[: text.rindex("SQ   ")])
    with pytest.raises(InputFormatError, match=r"trunc\.dat:\d+: entry Q00002: truncated"):
        list(parse_flatfile(path))
    skipped = []
    records = list(parse_flatfile(path, on_error=lambda *a: skipped.append(a)))
    assert [r.accession for r in records] == ["Q00001"] and skipped[0][1] == "Q00002"


def test_invalid_residue_named(fixtures, tmp_path):
    path = _corrupt(fixtures, tmp_path, "MKTAYIAKQR", "MKTAY1AKQR")
    with pytest.raises(SequenceError, match=r"Q00001.*invalid residue '1' at position 6"):
        list(parse_flatfile(path))


def test_length_mismatch_and_bad_line(fixtures, tmp_path):
    with pytest.raises(InputFormatError, match="ID line says 99"):
        list(parse_flatfile(_corrupt(fixtures, tmp_path, f"{len(SEQ1)} AA.", "99 AA.")))
    with pytest.raises(InputFormatError, match="not a flat-file line"):
        list(parse_flatfile(_corrupt(fixtures, tmp_path, "OX   NCBI", "OX NCBI")))


def test_tsv_columns(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text(
        "Entry\tProtein names\tOrganism\tSequence\tFunction [CC]\tSubcellular location [CC]\tEC number\t"
        "Gene Ontology (molecular function)\tKeywords\n"
        "P1\tHemoglobin alpha (Alpha-globin)\tHomo sapiens (Human)\tMVLSA\tFUNCTION: Carries oxygen."
        " {ECO:0000305}.\tSUBCELLULAR LOCATION: Cytoplasm.\t1.1.1.1\theme binding [GO:0020037]; oxygen"
        " carrier activity [GO:0005344]\tHeme; Iron\n"
        "P2\t\t\tmvl\t\t\t\t\t\n")
    p1, p2 = list(parse_tsv(path))
    assert p1.protein_name == "Hemoglobin alpha" and p1.comment("FUNCTION") == "Carries oxygen."
    assert [g.name for g in p1.go] == ["heme binding", "oxygen carrier activity"] and p1.ec == ["1.1.1.1"]
    assert p1.comment("SUBCELLULAR LOCATION") == "Cytoplasm." and p1.keywords == ["Heme", "Iron"]
    assert p2.sequence == "MVL"


def test_tsv_bad_rows(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("Entry\tSequence\nP1\tMV*L\nP2\t\nP3\tMKV\n")
    skipped = []
    assert [r.accession for r in parse_tsv(path, on_error=lambda *a: skipped.append(a))] == ["P3"]
    assert "invalid residue '*' at position 3" in skipped[0][2] and "empty sequence" in skipped[1][2]
    (tmp_path / "nohead.tsv").write_text("foo\tbar\n")
    with pytest.raises(InputFormatError, match="nohead.tsv: not a UniProt TSV"):
        list(parse_tsv(tmp_path / "nohead.tsv"))
