"""UniProt XML reader: entries written by hand in UniProt's XML schema parse to the same records as the same
entries in flat-file form; malformed entries are counted and skipped by accession; memory stays bounded;
`sepit data build` reads XML (gzipped too)."""

from __future__ import annotations

import dataclasses
import gzip
import tracemalloc

import pytest

from sepit.data.uniprot import parse_flatfile
from sepit.data.uniprot_xml import is_uniprot_xml, parse_uniprot_xml
from sepit.errors import InputFormatError

FLAT = """\
ID   TEST1_HUMAN             Reviewed;          33 AA.
AC   Q00001; Q99991;
DE   RecName: Full=Test kinase alpha {ECO:0000305};
DE            EC=2.7.11.1 {ECO:0000269|PubMed:12345};
DE   AltName: Full=Other name;
GN   Name=TKA {ECO:0000312}; Synonyms=TK1;
OS   Homo sapiens (Human).
OX   NCBI_TaxID=9606;
CC   -!- FUNCTION: Serine/threonine kinase that phosphorylates the test
CC       substrate (PubMed:12345, PubMed:23456). Required for test signalling
CC       {ECO:0000269|PubMed:12345}.
CC   -!- CATALYTIC ACTIVITY:
CC       Reaction=L-seryl-[protein] + ATP = O-phospho-L-seryl-[protein] + ADP +
CC         H(+); Xref=Rhea:RHEA:17989, ChEBI:CHEBI:15378; EC=2.7.11.1;
CC         Evidence={ECO:0000269|PubMed:12345};
CC   -!- COFACTOR:
CC       Name=Mg(2+); Xref=ChEBI:CHEBI:18420; Evidence={ECO:0000250};
CC       Note=Binds 2 magnesium ions per subunit. {ECO:0000250};
CC   -!- SUBUNIT: Homodimer. Interacts with TKB. {ECO:0000250}.
CC   -!- SUBCELLULAR LOCATION: Cytoplasm {ECO:0000269}. Nucleus
CC       {ECO:0000269|PubMed:23456}. Cell membrane; Peripheral membrane
CC       protein. Note=Moves to the nucleus upon stimulation.
CC   -!- SUBCELLULAR LOCATION: [Isoform 2]: Secreted {ECO:0000305}.
CC   -!- TISSUE SPECIFICITY: Expressed in brain and liver.
CC   -!- DOMAIN: The kinase domain is autoinhibited by the C-terminus.
CC   -!- PTM: Autophosphorylated.
CC   -!- DISEASE: Test syndrome (TSYN) [MIM:100000]: A test disorder.
CC       Note=The disease is caused by variants affecting this gene.
CC   -!- BIOPHYSICOCHEMICAL PROPERTIES:
CC       Kinetic parameters:
CC         KM=12 uM for ATP {ECO:0000269|PubMed:12345};
CC         Vmax=1.5 umol/min/mg enzyme {ECO:0000269|PubMed:12345};
CC       pH dependence:
CC         Optimum pH is 7.5. {ECO:0000269|PubMed:12345};
CC   -!- SIMILARITY: Belongs to the protein kinase superfamily. Ser/Thr
CC       protein kinase family. {ECO:0000305}.
CC   ---------------------------------------------------------------------------
CC   Copyrighted by the UniProt Consortium.
CC   ---------------------------------------------------------------------------
DR   EMBL; X00001; CAA00001.1; -; mRNA.
DR   PDB; 1XYZ; X-ray; 2.00 A; A=1-20.
DR   PDB; 2ABC; NMR; -; A/B=1-33.
DR   AlphaFoldDB; Q00001; -.
DR   Pfam; PF00069; Pkinase; 1.
DR   InterPro; IPR000719; Prot_kinase_dom.
DR   GO; GO:0005737; C:cytoplasm; IDA:UniProtKB.
DR   GO; GO:0004674; F:protein serine/threonine kinase activity; IDA:UniProtKB.
PE   1: Evidence at protein level;
KW   3D-structure; ATP-binding; Kinase; Reference proteome.
FT   SIGNAL          1..5
FT                   /evidence="ECO:0000255"
FT   DOMAIN          3..25
FT                   /note="Protein kinase"
FT                   /evidence="ECO:0000255|PROSITE-ProRule:PRU00159"
FT   ACT_SITE        12
FT                   /note="Proton acceptor"
FT   MOTIF           <28..31
FT                   /note="Nuclear localization signal"
FT   DISULFID        ?..30
FT   HELIX           4..9
SQ   SEQUENCE   33 AA;  3630 MW;  0123456789ABCDEF CRC64;
     MKTAYIAKQR QISFVKSHFS RQLEERLGLI EVQ
//
ID   TEST2_ECOLI             Reviewed;          51 AA.
AC   Q00002;
DE   SubName: Full=Test transporter beta;
GN   ORFNames=b0001;
OS   Escherichia coli (strain K12).
OX   NCBI_TaxID=83333;
CC   -!- FUNCTION: Transports test molecules across the membrane.
CC   -!- SUBCELLULAR LOCATION: Mitochondrion inner membrane; Multi-pass
CC       membrane protein.
CC   -!- SIMILARITY: Belongs to the major facilitator superfamily.
DR   AlphaFoldDB; Q00002; -.
DR   GO; GO:0005743; C:mitochondrial inner membrane; IEA:UniProtKB.
KW   Membrane; Transport.
FT   TRANSMEM        10..40
FT                   /note="Helical"
SQ   SEQUENCE   51 AA;  5610 MW;  0123456789ABCDEF CRC64;
     MSTNPKPQRK TKRNTNRRPQ DVKFPGGGQI VGGVYLLPRR GPRLGVRATR K
//
"""

ENTRY1 = """\
<entry dataset="Swiss-Prot" created="2020-01-01" modified="2024-01-01" version="1">
  <accession>Q00001</accession>
  <accession>Q99991</accession>
  <name>TEST1_HUMAN</name>
  <protein>
    <recommendedName>
      <fullName evidence="5">Test kinase alpha</fullName>
      <ecNumber evidence="1">2.7.11.1</ecNumber>
    </recommendedName>
    <alternativeName><fullName>Other name</fullName></alternativeName>
  </protein>
  <gene>
    <name type="primary" evidence="6">TKA</name>
    <name type="synonym">TK1</name>
  </gene>
  <organism>
    <name type="scientific">Homo sapiens</name>
    <name type="common">Human</name>
    <dbReference type="NCBI Taxonomy" id="9606"/>
    <lineage><taxon>Eukaryota</taxon><taxon>Metazoa</taxon></lineage>
  </organism>
  <reference key="1"><citation type="journal article"><title>A test.</title></citation></reference>
  <comment type="function">
    <text evidence="1">Serine/threonine kinase that phosphorylates the test substrate (PubMed:12345, \
PubMed:23456). Required for test signalling</text>
  </comment>
  <comment type="catalytic activity">
    <reaction evidence="1">
      <text>L-seryl-[protein] + ATP = O-phospho-L-seryl-[protein] + ADP + H(+)</text>
      <dbReference type="Rhea" id="RHEA:17989"/>
      <dbReference type="ChEBI" id="CHEBI:15378"/>
      <dbReference type="EC" id="2.7.11.1"/>
    </reaction>
  </comment>
  <comment type="cofactor">
    <cofactor evidence="2">
      <name>Mg(2+)</name>
      <dbReference type="ChEBI" id="CHEBI:18420"/>
    </cofactor>
    <text evidence="2">Binds 2 magnesium ions per subunit.</text>
  </comment>
  <comment type="subunit">
    <text evidence="2">Homodimer. Interacts with TKB.</text>
  </comment>
  <comment type="subcellular location">
    <subcellularLocation><location evidence="3">Cytoplasm</location></subcellularLocation>
    <subcellularLocation><location evidence="1">Nucleus</location></subcellularLocation>
    <subcellularLocation>
      <location>Cell membrane</location>
      <topology>Peripheral membrane protein</topology>
    </subcellularLocation>
    <text>Moves to the nucleus upon stimulation.</text>
  </comment>
  <comment type="subcellular location">
    <molecule>Isoform 2</molecule>
    <subcellularLocation><location evidence="5">Secreted</location></subcellularLocation>
  </comment>
  <comment type="tissue specificity"><text>Expressed in brain and liver.</text></comment>
  <comment type="domain"><text>The kinase domain is autoinhibited by the C-terminus.</text></comment>
  <comment type="PTM"><text>Autophosphorylated.</text></comment>
  <comment type="disease">
    <disease id="DI-00001">
      <name>Test syndrome</name>
      <acronym>TSYN</acronym>
      <description>A test disorder.</description>
      <dbReference type="MIM" id="100000"/>
    </disease>
    <text>The disease is caused by variants affecting this gene.</text>
  </comment>
  <comment type="biophysicochemical properties">
    <kinetics>
      <KM evidence="1">12 uM for ATP</KM>
      <Vmax evidence="1">1.5 umol/min/mg enzyme</Vmax>
    </kinetics>
    <phDependence><text evidence="1">Optimum pH is 7.5.</text></phDependence>
  </comment>
  <comment type="similarity">
    <text evidence="5">Belongs to the protein kinase superfamily. Ser/Thr protein kinase family.</text>
  </comment>
  <dbReference type="EMBL" id="X00001"><property type="protein sequence ID" value="CAA00001.1"/></dbReference>
  <dbReference type="PDB" id="1XYZ">
    <property type="method" value="X-ray"/>
    <property type="resolution" value="2.00 A"/>
    <property type="chains" value="A=1-20"/>
  </dbReference>
  <dbReference type="PDB" id="2ABC">
    <property type="method" value="NMR"/>
    <property type="chains" value="A/B=1-33"/>
  </dbReference>
  <dbReference type="AlphaFoldDB" id="Q00001"/>
  <dbReference type="Pfam" id="PF00069">
    <property type="entry name" value="Pkinase"/>
    <property type="match status" value="1"/>
  </dbReference>
  <dbReference type="InterPro" id="IPR000719"><property type="entry name" value="Prot_kinase_dom"/></dbReference>
  <dbReference type="GO" id="GO:0005737">
    <property type="term" value="C:cytoplasm"/>
    <property type="evidence" value="ECO:0000314"/>
  </dbReference>
  <dbReference type="GO" id="GO:0004674">
    <property type="term" value="F:protein serine/threonine kinase activity"/>
    <property type="evidence" value="ECO:0000314"/>
  </dbReference>
  <proteinExistence type="evidence at protein level"/>
  <keyword id="KW-0002">3D-structure</keyword>
  <keyword id="KW-0067">ATP-binding</keyword>
  <keyword id="KW-0418">Kinase</keyword>
  <keyword id="KW-1185">Reference proteome</keyword>
  <feature type="signal peptide" evidence="4"><location><begin position="1"/><end position="5"/></location></feature>
  <feature type="domain" description="Protein kinase" evidence="4">
    <location><begin position="3"/><end position="25"/></location>
  </feature>
  <feature type="active site" description="Proton acceptor"><location><position position="12"/></location></feature>
  <feature type="short sequence motif" description="Nuclear localization signal">
    <location><begin position="28" status="less than"/><end position="31"/></location>
  </feature>
  <feature type="disulfide bond"><location><begin status="unknown"/><end position="30"/></location></feature>
  <feature type="helix"><location><begin position="4"/><end position="9"/></location></feature>
  <evidence type="ECO:0000269" key="1"><source><dbReference type="PubMed" id="12345"/></source></evidence>
  <sequence length="33" mass="3630" checksum="0123456789ABCDEF" modified="2020-01-01" \
version="1">MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ</sequence>
</entry>
"""

ENTRY2 = """\
<entry dataset="Swiss-Prot" created="2020-01-01" modified="2024-01-01" version="1">
  <accession>Q00002</accession>
  <name>TEST2_ECOLI</name>
  <protein><submittedName><fullName>Test transporter beta</fullName></submittedName></protein>
  <gene><name type="ORF">b0001</name></gene>
  <organism>
    <name type="scientific">Escherichia coli (strain K12)</name>
    <dbReference type="NCBI Taxonomy" id="83333"/>
  </organism>
  <comment type="function"><text>Transports test molecules across the membrane.</text></comment>
  <comment type="subcellular location">
    <subcellularLocation>
      <location>Mitochondrion inner membrane</location>
      <topology>Multi-pass membrane protein</topology>
    </subcellularLocation>
  </comment>
  <comment type="similarity"><text>Belongs to the major facilitator superfamily.</text></comment>
  <dbReference type="AlphaFoldDB" id="Q00002"/>
  <dbReference type="GO" id="GO:0005743"><property type="term" value="C:mitochondrial inner membrane"/></dbReference>
  <keyword id="KW-0472">Membrane</keyword>
  <keyword id="KW-0813">Transport</keyword>
  <feature type="transmembrane region" description="Helical">
    <location><begin position="10"/><end position="40"/></location>
  </feature>
  <sequence length="51" mass="5610" checksum="0123456789ABCDEF" modified="2020-01-01" version="1">
    MSTNPKPQRKTKRNTNRRPQDVKFPGGGQIVGGVYLLPRRGPRLGVRATRK
  </sequence>
</entry>
"""

BAD_LENGTH = """\
<entry dataset="Swiss-Prot"><accession>Q00003</accession><name>BAD_HUMAN</name>
  <sequence length="40">MKTAYIAKQR</sequence></entry>
"""
BAD_RESIDUE = """\
<entry dataset="Swiss-Prot"><accession>Q00004</accession><name>BAD2_HUMAN</name>
  <sequence length="5">MK1AY</sequence></entry>
"""


def xml_text(*entries: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<uniprot xmlns="http://uniprot.org/uniprot" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n' + "".join(entries)
            + '<copyright>Copyrighted by the UniProt Consortium</copyright>\n</uniprot>\n')


def _plain(record) -> dict:
    return {**dataclasses.asdict(record), "source": ""}


def test_xml_and_flat_file_give_equal_records(tmp_path):
    flat, xml = tmp_path / "two.dat", tmp_path / "two.xml"
    flat.write_text(FLAT)
    xml.write_text(xml_text(ENTRY1, ENTRY2))
    from_flat, from_xml = list(parse_flatfile(flat)), list(parse_uniprot_xml(xml))
    assert [r.accession for r in from_xml] == ["Q00001", "Q00002"]
    for a, b in zip(from_flat, from_xml, strict=True):
        assert _plain(a) == _plain(b)
    first = from_xml[0]  # the comparison is about real content, not two empty records
    assert len(first.comments) == 11 and first.comment("COFACTOR") == \
        "Name=Mg(2+); Note=Binds 2 magnesium ions per subunit."
    assert first.comments["SUBCELLULAR LOCATION"][1] == "[Isoform 2]: Secreted."
    assert [x.pdb_chains() for x in first.xrefs if x.db == "PDB"] == [["A"], ["A", "B"]]
    assert [f.type for f in first.features] == ["SIGNAL", "DOMAIN", "ACT_SITE", "MOTIF", "DISULFID"]


def test_malformed_entries_are_counted_and_skipped_by_accession(tmp_path):
    path = tmp_path / "bad.xml.gz"
    path.write_bytes(gzip.compress(xml_text(BAD_LENGTH, ENTRY2, BAD_RESIDUE).encode()))
    skipped = []
    records = list(parse_uniprot_xml(path, on_error=lambda src, acc, why: skipped.append((src, acc, why))))
    assert [r.accession for r in records] == ["Q00002"] and is_uniprot_xml(path)
    assert [(src.rsplit(":", 1)[1], acc) for src, acc, _ in skipped] == [("entry 1", "Q00003"), ("entry 3", "Q00004")]
    assert "sequence has 10 residues, length attribute says 40" in skipped[0][2]
    assert "invalid residue '1' at position 3" in skipped[1][2]
    with pytest.raises(InputFormatError, match=r"bad\.xml\.gz:entry 1: entry Q00003: sequence has 10 residues"):
        list(parse_uniprot_xml(path))


def test_not_well_formed_xml_names_the_file(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text(xml_text(ENTRY2)[:-40])
    with pytest.raises(InputFormatError, match=r"broken\.xml: not well-formed UniProt XML after entry 1"):
        list(parse_uniprot_xml(path))


def _peak_kib(path) -> float:
    tracemalloc.start()
    n = sum(1 for _ in parse_uniprot_xml(path))
    peak = tracemalloc.get_traced_memory()[1] / 1024
    tracemalloc.stop()
    assert n > 0
    return peak


def test_memory_stays_bounded_while_streaming(tmp_path):
    small, large = tmp_path / "small.xml", tmp_path / "large.xml"
    small.write_text(xml_text(*[ENTRY1] * 50))
    large.write_text(xml_text(*[ENTRY1] * 1000))  # 20x the entries
    assert _peak_kib(large) < 2 * _peak_kib(small)


def test_data_build_reads_uniprot_xml(tmp_path):
    from sepit.data.build import BuildConfig, build_dataset
    from sepit.data.store import DatasetStore

    path = tmp_path / "entries.xml"
    path.write_text(xml_text(ENTRY1, BAD_LENGTH, ENTRY2))
    out = tmp_path / "ds"
    summary = build_dataset(BuildConfig(inputs=[str(path)], out=str(out), split="random", seed=0, progress=False))
    assert sorted(DatasetStore(out).accessions()) == ["Q00001", "Q00002"]
    assert "Q00003" in str(summary)
