"""GO graph (OBO and GO.db SQLite) and GO negatives that are never implied by a protein's own terms."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from sepit.data.go import GeneOntology
from sepit.data.instructions import InstructionConfig, make_instructions
from sepit.data.records import GoTerm, ProteinRecord
from sepit.errors import InputFormatError
from sepit.resources import cache_dir

OBO = """format-version: 1.2

[Term]
id: GO:0000001
name: cellular_component

[Term]
id: GO:0000002
name: nucleus
alt_id: GO:0000099
is_a: GO:0000001 ! cellular_component

[Term]
id: GO:0000003
name: nucleoplasm
relationship: part_of GO:0000002 ! nucleus

[Term]
id: GO:0000004
name: regulation of nucleus size
relationship: regulates GO:0000002 ! nucleus

[Term]
id: GO:0000005
name: old term
is_obsolete: true

[Term]
id: GO:0000006
name: cytosol
is_a: GO:0000001 ! cellular_component

[Typedef]
id: part_of
name: part of
"""


def _obo(tmp_path: Path, gz: bool = False) -> Path:
    path = tmp_path / ("go.obo.gz" if gz else "go.obo")
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(OBO)
    else:
        path.write_text(OBO)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_obo_ancestors_follow_is_a_and_part_of_only(tmp_path, gz):
    go = GeneOntology.load(_obo(tmp_path, gz))
    assert go.ancestors("GO:0000003") == {"GO:0000002", "GO:0000001"}  # part_of, then is_a
    assert go.ancestors("GO:0000004") == frozenset()  # regulates is not a true-path relation
    assert "GO:0000005" not in go.names  # obsolete
    assert go.ancestors("GO:0000099") == {"GO:0000002", "GO:0000001"}  # a merged (alt) id
    assert go.implied_names(["GO:0000003", "GO:9999999"]) == {"nucleoplasm", "nucleus", "cellular_component"}


def test_bad_ontology_files_are_named(tmp_path):
    with pytest.raises(InputFormatError, match="not found"):
        GeneOntology.load(tmp_path / "missing.obo")
    (tmp_path / "empty.obo").write_text("format-version: 1.2\n")
    with pytest.raises(InputFormatError, match="no GO terms"):
        GeneOntology.load(tmp_path / "empty.obo")
    (tmp_path / "bad.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(InputFormatError, match="bad.sqlite"):
        GeneOntology.load(tmp_path / "bad.sqlite")


def _protein(acc: str, *terms: tuple[str, str]) -> ProteinRecord:
    rng = random.Random(acc)
    seq = "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(60))
    return ProteinRecord(acc, seq, go=[GoTerm(go_id, "CC", name) for go_id, name in terms])


def test_go_negatives_avoid_implied_terms(tmp_path):
    """P1 is in the nucleoplasm, so it is also in the nucleus: "nucleus" may not be its negative or distractor.
    Without the ontology it would be (the pool has nothing else to offer for P1 but cytosol)."""
    go = GeneOntology.load(_obo(tmp_path))
    records = [_protein("P1", ("GO:0000003", "nucleoplasm")), _protein("P2", ("GO:0000002", "nucleus")),
               _protein("P3", ("GO:0000006", "cytosol"))]

    def p1_negatives(ontology) -> set[str]:
        out = set()
        for seed in range(30):
            for item in make_instructions(records, InstructionConfig(seed=seed), ontology=ontology):
                if item["accession"] == "P1" and item["task"] == "closed":
                    out |= {item["label"]} if item["answer"] == "no" else set()
                    out |= {c for c in item["choices"] if c not in ("yes", "no", item["answer"])}
        return out

    assert "nucleus" in p1_negatives(None)  # the flaw the ontology fixes
    assert p1_negatives(go) == {"cytosol"}


def test_real_go_db_sqlite():
    """GO.db's SQLite as installed by scripts/install.sh (.ci/run always installs it)."""
    path = cache_dir() / "go" / "GO.sqlite"
    if not path.is_file():
        pytest.skip(f"{path} not installed (scripts/install.sh puts it there)")
    go = GeneOntology.load(path)
    assert len(go) > 40000
    implied = go.implied_names(["GO:0005654"])  # nucleoplasm
    assert {"nucleoplasm", "nucleus", "nuclear lumen", "cellular_component"} <= implied
    assert "cytosol" not in implied
    assert "protein binding" in go.implied_names(["GO:0019899"])  # enzyme binding is_a protein binding
