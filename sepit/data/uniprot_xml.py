"""Streaming reader for UniProtKB XML (``uniprot_sprot.xml`` / ``.xml.gz``, namespace http://uniprot.org/uniprot).

Entries are read one at a time with ``xml.etree.ElementTree.iterparse`` and cleared once parsed (memory stays
bounded on the full Swiss-Prot file). Each entry becomes the same :class:`ProteinRecord` that
:mod:`sepit.data.uniprot` makes from the entry's flat-file text: comment texts are rebuilt in the flat-file
form (``Cell membrane; Multi-pass membrane protein. Note=...``, ``Reaction=...; EC=...``, ``Name=...; Note=...``
for cofactors, ``NAME (ACRONYM) [MIM:n]: description``) and cleaned by the same
:func:`sepit.data.records.clean_text`; cross-reference fields, feature types and positions follow the flat
file's.

A malformed entry (no accession, bad or mis-sized sequence) raises a :class:`SepitError` naming the file,
entry number and accession; with ``on_error(source, record, reason)`` it is reported there and skipped. XML
that is not well-formed stops the read with an :class:`InputFormatError` naming the line.
"""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from sepit.data.records import (
    CC_TOPICS,
    GO_ASPECTS,
    XREF_DBS,
    CrossRef,
    Feature,
    GoTerm,
    ProteinRecord,
    clean_text,
    family_from_similarity,
    validate_sequence,
)
from sepit.data.uniprot import FEATURE_TYPES, OnError
from sepit.errors import InputFormatError, SepitError

NS = "{http://uniprot.org/uniprot}"
# XML feature type -> flat-file FT key (the kept ones: sepit.data.uniprot.FEATURE_TYPES)
FEATURE_KEYS = {
    "domain": "DOMAIN", "short sequence motif": "MOTIF", "active site": "ACT_SITE", "binding site": "BINDING",
    "site": "SITE", "metal ion-binding site": "METAL", "transmembrane region": "TRANSMEM",
    "intramembrane region": "INTRAMEM", "signal peptide": "SIGNAL", "transit peptide": "TRANSIT",
    "propeptide": "PROPEP", "zinc finger region": "ZN_FING", "DNA-binding region": "DNA_BIND", "repeat": "REPEAT",
    "region of interest": "REGION", "coiled-coil region": "COILED", "compositionally biased region": "COMPBIAS",
    "topological domain": "TOPO_DOM", "nucleotide phosphate-binding region": "NP_BIND",
    "calcium-binding region": "CA_BIND", "lipid moiety-binding region": "LIPID", "glycosylation site": "CARBOHYD",
    "disulfide bond": "DISULFID", "modified residue": "MOD_RES",
}
assert set(FEATURE_KEYS.values()) == FEATURE_TYPES


def is_uniprot_xml(path: str | Path) -> bool:
    """True when the file (plain or gzipped) starts like an XML document."""
    with _open_binary(Path(path)) as fh:
        head = fh.read(512).lstrip()
    return head.startswith(b"<?xml") or head.startswith(b"<uniprot")


def _open_binary(path: Path) -> IO[bytes]:
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def parse_uniprot_xml(path: str | Path, on_error: OnError | None = None) -> Iterator[ProteinRecord]:
    """Yield one :class:`ProteinRecord` per ``<entry>`` of a UniProt XML file, streaming."""
    path = Path(path)
    with _open_binary(path) as fh:
        events = ET.iterparse(fh, events=("start", "end"))
        root, n = None, 0
        try:
            for event, elem in events:
                if root is None:
                    root = elem
                if event != "end" or elem.tag != f"{NS}entry":
                    continue
                n += 1
                record = _safe_entry(elem, f"{path}:entry {n}", on_error)
                root.clear()  # drop the parsed entry (and any before it): memory stays bounded
                if record is not None:
                    yield record
        except ET.ParseError as err:
            raise InputFormatError(f"{path}: not well-formed UniProt XML after entry {n} ({err})") from None
    if root is None or root.tag != f"{NS}uniprot":
        raise InputFormatError(f"{path}: not UniProt XML (root element {getattr(root, 'tag', None)!r}, expected "
                               f"{NS}uniprot)")


def _safe_entry(entry: ET.Element, where: str, on_error: OnError | None) -> ProteinRecord | None:
    accession = _text(entry.find(f"{NS}accession")) or "?"
    try:
        return parse_entry(entry, where)
    except SepitError as err:
        reason = str(err).removeprefix(f"{where}: ").removeprefix(f"({accession}) ")
        if on_error is None:
            raise type(err)(f"{where}: entry {accession}: {reason}") from None
        on_error(where, accession, reason)
        return None


def _text(elem: ET.Element | None) -> str:
    return "".join(elem.itertext()).strip() if elem is not None else ""


def parse_entry(entry: ET.Element, where: str = "entry") -> ProteinRecord:
    """One ``<entry>`` element -> :class:`ProteinRecord` (same fields as the flat-file reader)."""
    accessions = [_text(a) for a in entry.findall(f"{NS}accession") if _text(a)]
    if not accessions:
        raise InputFormatError(f"{where}: entry without an accession")
    seq_elem = entry.find(f"{NS}sequence")
    if seq_elem is None:
        raise InputFormatError(f"{where}: ({accessions[0]}) entry without a sequence")
    sequence = validate_sequence("".join(_text(seq_elem).split()), f"{where} ({accessions[0]})")
    length = seq_elem.get("length")
    if length is not None and int(length) != len(sequence):
        raise InputFormatError(f"{where}: ({accessions[0]}) sequence has {len(sequence)} residues, length "
                               f"attribute says {length}")
    rec = ProteinRecord(accession=accessions[0], sequence=sequence, accessions=accessions,
                        entry_name=_text(entry.find(f"{NS}name")), source=where)
    _protein_names(entry.find(f"{NS}protein"), rec)
    gene = entry.find(f"{NS}gene/{NS}name[@type='primary']")
    rec.gene = _text(gene)
    _organism(entry.find(f"{NS}organism"), rec)
    rec.comments = parse_comments(entry.findall(f"{NS}comment"))
    rec.family = family_from_similarity(rec.comment("SIMILARITY"))
    _db_references(entry.findall(f"{NS}dbReference"), rec)
    rec.keywords = [clean_text(_text(k)) for k in entry.findall(f"{NS}keyword") if _text(k)]
    rec.features = [f for f in map(_feature, entry.findall(f"{NS}feature")) if f is not None]
    return rec


def _protein_names(protein: ET.Element | None, rec: ProteinRecord) -> None:
    if protein is None:
        return
    full = (protein.find(f"{NS}recommendedName/{NS}fullName") or protein.find(f"{NS}submittedName/{NS}fullName")
            or protein.find(f".//{NS}fullName"))
    rec.protein_name = clean_text(_text(full))
    for ec in protein.iter(f"{NS}ecNumber"):
        if _text(ec) and _text(ec) not in rec.ec:
            rec.ec.append(_text(ec))


def _organism(organism: ET.Element | None, rec: ProteinRecord) -> None:
    if organism is None:
        return
    names = organism.findall(f"{NS}name")
    scientific = [_text(n) for n in names if n.get("type") == "scientific"]
    others = [_text(n) for n in names if n.get("type") != "scientific"]
    rec.organism = " ".join(scientific[:1] + [f"({n})" for n in others]).strip().rstrip(".")
    taxon = organism.find(f"{NS}dbReference[@type='NCBI Taxonomy']")
    rec.taxon_id = int(taxon.get("id")) if taxon is not None and (taxon.get("id") or "").isdigit() else None


# --- comments, rebuilt in their flat-file form ---
def parse_comments(comments: list[ET.Element]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for comment in comments:
        topic = (comment.get("type") or "").upper()
        if topic not in CC_TOPICS:
            continue
        build = _COMMENT_TEXT.get(topic, _plain_comment)
        text = clean_text(_molecule(comment) + build(comment))
        if text:
            out.setdefault(topic, []).append(text)
    return out


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text.endswith(".") else f"{text}."


def _molecule(comment: ET.Element) -> str:
    molecule = _text(comment.find(f"{NS}molecule"))
    return f"[{molecule}]: " if molecule else ""


def _notes(comment: ET.Element) -> list[str]:
    return [_text(t) for t in comment.findall(f"{NS}text") if _text(t)]


def _plain_comment(comment: ET.Element) -> str:
    return " ".join(_sentence(t) for t in _notes(comment))


def _location_comment(comment: ET.Element) -> str:
    parts = []
    for loc in comment.findall(f"{NS}subcellularLocation"):
        terms = [_text(t) for t in loc if t.tag in (f"{NS}location", f"{NS}topology", f"{NS}orientation")]
        parts.append(_sentence("; ".join(t for t in terms if t)))
    parts += [f"Note={_sentence(t)}" for t in _notes(comment)]
    return " ".join(parts)


def _reaction_comment(comment: ET.Element) -> str:
    reaction = comment.find(f"{NS}reaction")
    if reaction is None:
        return _plain_comment(comment)
    text = f"Reaction={_text(reaction.find(f'{NS}text'))};"
    for ec in reaction.findall(f"{NS}dbReference[@type='EC']"):
        text += f" EC={ec.get('id')};"
    for direction in comment.findall(f"{NS}physiologicalReaction"):
        text += f" PhysiologicalDirection={direction.get('direction')};"
    return text


def _cofactor_comment(comment: ET.Element) -> str:
    names = [f"Name={_text(c.find(f'{NS}name'))};" for c in comment.findall(f"{NS}cofactor")]
    if not names:
        return _plain_comment(comment)
    return " ".join(names + [f"Note={_sentence(t)};" for t in _notes(comment)])


def _disease_comment(comment: ET.Element) -> str:
    disease = comment.find(f"{NS}disease")
    if disease is None:
        return _plain_comment(comment)
    head = _text(disease.find(f"{NS}name"))
    if _text(disease.find(f"{NS}acronym")):
        head += f" ({_text(disease.find(f'{NS}acronym'))})"
    mim = disease.find(f"{NS}dbReference[@type='MIM']")
    if mim is not None:
        head += f" [MIM:{mim.get('id')}]"
    text = f"{head}: {_sentence(_text(disease.find(f'{NS}description')))}"
    return " ".join([text] + [f"Note={_sentence(t)}" for t in _notes(comment)])


def _biophysics_comment(comment: ET.Element) -> str:
    """``Kinetic parameters: KM=...; Vmax=...; Note=...; pH dependence: ...;`` as in the flat file."""
    parts = []
    for child in comment:
        tag = child.tag.removeprefix(NS)
        notes = [f"Note={_sentence(_text(t))};" for t in child.findall(f"{NS}text") if _text(t)]
        if tag == "kinetics":
            values = [f"{k.tag.removeprefix(NS)}={_text(k)};" for k in child if k.tag != f"{NS}text"]
            parts.append(" ".join(["Kinetic parameters:", *values, *notes]))
        elif tag == "absorption":
            values = [f"Abs(max)={_text(k)};" for k in child.findall(f"{NS}max")]
            parts.append(" ".join(["Absorption:", *values, *notes]))
        elif tag in _BIOPHYSICS:
            parts.append(f"{_BIOPHYSICS[tag]}: " + " ".join(f"{_sentence(_text(t))};" for t in child.findall(
                f"{NS}text")))
    return " ".join(parts)


_BIOPHYSICS = {"phDependence": "pH dependence", "redoxPotential": "Redox potential",
               "temperatureDependence": "Temperature dependence"}
_COMMENT_TEXT = {"SUBCELLULAR LOCATION": _location_comment, "CATALYTIC ACTIVITY": _reaction_comment,
                 "COFACTOR": _cofactor_comment, "DISEASE": _disease_comment,
                 "BIOPHYSICOCHEMICAL PROPERTIES": _biophysics_comment}


# --- cross-references and features ---
def _db_references(refs: list[ET.Element], rec: ProteinRecord) -> None:
    for ref in refs:
        db, ident = ref.get("type"), ref.get("id") or ""
        props = {p.get("type"): p.get("value") or "" for p in ref.findall(f"{NS}property")}
        if db == "GO":
            aspect, _, name = props.get("term", "").partition(":")
            rec.go.append(GoTerm(ident, GO_ASPECTS.get(aspect, aspect), name.strip()))
        elif db == "PDB":
            fields = (props.get("method", "-"), props.get("resolution", "-"), props.get("chains", "-"))
            rec.xrefs.append(CrossRef(db, ident, fields))
        elif db in XREF_DBS:
            rec.xrefs.append(CrossRef(db, ident, tuple(props.values()) or ("-",)))


def _position(elem: ET.Element | None) -> int | None:
    if elem is None or elem.get("status") == "unknown":
        return None
    value = elem.get("position") or ""
    return int(value) if value.isdigit() else None


def _feature(feature: ET.Element) -> Feature | None:
    kind = FEATURE_KEYS.get(feature.get("type") or "")
    if kind is None:
        return None
    loc = feature.find(f"{NS}location")
    if loc is None:
        return Feature(kind, None, None, clean_text(feature.get("description") or ""))
    point = loc.find(f"{NS}position")
    start, end = (_position(point), _position(point)) if point is not None else (
        _position(loc.find(f"{NS}begin")), _position(loc.find(f"{NS}end")))
    return Feature(kind, start, end, clean_text(feature.get("description") or ""))
