"""Reader for UniProt website TSV exports (plain or gzipped), any subset of the known columns.

Required columns: ``Entry`` and ``Sequence``. Text columns such as ``Function [CC]`` hold the flat-file topic
text prefixed by ``FUNCTION:``; GO columns hold ``name [GO:id]; name [GO:id]``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from sepit.data.records import (
    GoTerm,
    ProteinRecord,
    clean_text,
    family_from_similarity,
    validate_sequence,
)
from sepit.data.uniprot import OnError
from sepit.errors import InputFormatError, SepitError
from sepit.io_utils import open_text

# TSV column -> CC topic of the flat file
COMMENT_COLUMNS = {
    "Function [CC]": "FUNCTION",
    "Catalytic activity": "CATALYTIC ACTIVITY",
    "Cofactor": "COFACTOR",
    "Subunit structure": "SUBUNIT",
    "Subunit structure [CC]": "SUBUNIT",
    "Subcellular location [CC]": "SUBCELLULAR LOCATION",
    "Tissue specificity": "TISSUE SPECIFICITY",
    "Induction": "INDUCTION",
    "Domain [CC]": "DOMAIN",
    "Post-translational modification": "PTM",
    "Pathway": "PATHWAY",
    "Sequence similarities": "SIMILARITY",
    "Involvement in disease": "DISEASE",
    "Activity regulation": "ACTIVITY REGULATION",
    "Biophysicochemical properties": "BIOPHYSICOCHEMICAL PROPERTIES",
}
GO_COLUMNS = {
    "Gene Ontology (molecular function)": "MF",
    "Gene Ontology (biological process)": "BP",
    "Gene Ontology (cellular component)": "CC",
}
_GO_ITEM = re.compile(r"(?:^|;)\s*([^\[;]*?)\s*\[(GO:\d{7})\]")


def parse_tsv(path: str | Path, on_error: OnError | None = None) -> Iterator[ProteinRecord]:
    """Yield one :class:`ProteinRecord` per row; bad rows raise (or go to ``on_error``) naming file and line."""
    path = Path(path)
    with open_text(path) as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header or "Entry" not in header or "Sequence" not in header:
            raise InputFormatError(f"{path}: not a UniProt TSV export (needs 'Entry' and 'Sequence' columns;"
                                   f" header is {header!r})")
        for lineno, row in enumerate(reader, 2):
            if not any(row):
                continue
            where = f"{path}:{lineno}"
            try:
                if len(row) != len(header):
                    raise InputFormatError(f"{where}: {len(row)} fields, header has {len(header)}")
                yield parse_row(dict(zip(header, row, strict=True)), where)
            except SepitError as err:
                if on_error is None:
                    raise
                on_error(where, row[0] if row else "?", str(err).split(": ", 1)[-1])


def parse_row(row: dict[str, str], where: str) -> ProteinRecord:
    """One TSV row (column name -> cell) -> :class:`ProteinRecord`."""
    accession = row["Entry"].strip()
    if not accession:
        raise InputFormatError(f"{where}: empty Entry")
    rec = ProteinRecord(accession=accession, accessions=[accession], source=where,
                        sequence=validate_sequence(row["Sequence"].strip(), f"{where} ({accession})"))
    rec.entry_name = row.get("Entry Name", "").strip()
    rec.protein_name = _first_name(row.get("Protein names", ""))
    rec.gene = row.get("Gene Names", row.get("Gene Names (primary)", "")).split(" ")[0].strip()
    rec.organism = row.get("Organism", "").strip()
    taxon = row.get("Organism (ID)", "").strip()
    rec.taxon_id = int(taxon) if taxon.isdigit() else None
    for column, topic in COMMENT_COLUMNS.items():
        text = _strip_topic(row.get(column, ""), topic)
        if text:
            rec.comments.setdefault(topic, []).append(text)
    for column, aspect in GO_COLUMNS.items():
        rec.go.extend(GoTerm(go_id, aspect, name) for name, go_id in _GO_ITEM.findall(row.get(column, "")))
    rec.ec = [e.strip() for e in row.get("EC number", "").split(";") if e.strip()]
    rec.keywords = [k.strip() for k in row.get("Keywords", "").split(";") if k.strip()]
    rec.family = row.get("Protein families", "").split(";")[0].strip() or \
        family_from_similarity(rec.comment("SIMILARITY"))
    return rec


def _strip_topic(cell: str, topic: str) -> str:
    """Remove the ``TOPIC:`` prefixes the website puts before each block, then clean."""
    cell = cell.strip()
    if not cell:
        return ""
    return clean_text(cell.replace(f"{topic}:", " "))


def _first_name(cell: str) -> str:
    """``"Hemoglobin subunit alpha (Alpha-globin) (Hemoglobin alpha chain)"`` -> first name."""
    cell = cell.strip()
    depth, out = 0, []
    for ch in cell:
        if ch == "(" and depth == 0 and out and out[-1] == " ":
            break
        depth += ch == "("
        depth -= ch == ")" and depth > 0
        out.append(ch)
    return clean_text("".join(out))
