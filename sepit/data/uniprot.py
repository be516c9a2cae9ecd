"""Streaming reader for UniProtKB/Swiss-Prot flat files (``.dat`` / ``.dat.gz``), entry by entry.

Lines are grouped by their two-letter code and parsed once per entry (faster than ``Bio.SwissProt.parse``,
see benchmarks/bench_flatfile.py). Both feature-table layouts are read: the pre-2019 column layout
(``FT   DOMAIN   10  100   Note.``) and the current one (``FT   DOMAIN   10..100`` + ``/note="..."``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

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
from sepit.errors import InputFormatError, SepitError
from sepit.io_utils import open_text

OnError = Callable[[str, str, str], None]  # (source, record, reason)

_SKIP = frozenset(("RN", "RP", "RC", "RX", "RG", "RA", "RT", "RL", "DT", "OC", "OG", "OH", "PE"))
_END = "\n//"
_SEP = "\n//\n"
_DR_KEEP = frozenset(("GO", *XREF_DBS))
# feature types kept (domains, motifs, sites, membrane topology, signal peptide, ...)
FEATURE_TYPES = frozenset((
    "DOMAIN", "MOTIF", "ACT_SITE", "BINDING", "SITE", "METAL", "TRANSMEM", "INTRAMEM", "SIGNAL", "TRANSIT",
    "PROPEP", "ZN_FING", "DNA_BIND", "REPEAT", "REGION", "COILED", "COMPBIAS", "TOPO_DOM", "NP_BIND", "CA_BIND",
    "LIPID", "CARBOHYD", "DISULFID", "MOD_RES",
))
_EC = re.compile(r"EC=([\d.n\-]+)")
_FULL = re.compile(r"Full=([^;{]+)")
_GENE = re.compile(r"Name=([^;{]+)")
_TAXON = re.compile(r"NCBI_TaxID=(\d+)")
_FT_NEW = re.compile(r"^(\S+)\s+([<>?]?\d*|\?)\.\.([<>?]?\d*|\?)\s*$|^(\S+)\s+([<>]?\d+)\s*$")
_FT_OLD = re.compile(r"^(\S+)\s+([<>?]?\d*)\s+([<>?]?\d*)\s*(.*)$")
_QUAL = re.compile(r'/(\w+)="?([^"]*)"?')
_FTID = re.compile(r"/FTId=\S+")


def parse_flatfile(path: str | Path, on_error: OnError | None = None) -> Iterator[ProteinRecord]:
    """Yield one :class:`ProteinRecord` per entry of a Swiss-Prot flat file.

    A malformed entry (bad line, sequence/length mismatch, invalid residue, truncated last entry) raises a
    :class:`SepitError` naming the file, line and entry; with ``on_error(source, record, reason)`` it is
    reported there and skipped instead.
    """
    path = Path(path)
    start = 1
    with open_text(path) as fh:
        for text in _entry_texts(fh):
            complete = text.endswith(_END)
            body = text[: -len(_END)] if complete else text
            lines = [line for line in body.split("\n") if line and line[:2] not in _SKIP]
            if lines and not complete:
                reason = "truncated entry: end of file before the '//' terminator"
                _fail(path, start, _entry_id(lines), reason, on_error)
            elif lines:
                record = _safe_parse(path, start, lines, on_error)
                if record is not None:
                    yield record
            start += text.count("\n") + 1


def _entry_texts(fh, chunk: int = 1 << 20) -> Iterator[str]:
    """Split a stream into entry texts (each ending with its ``//`` line; the last may be truncated)."""
    buffer = ""
    while True:
        data = fh.read(chunk)
        buffer += data
        parts = buffer.split(_SEP)
        buffer = parts.pop()
        for part in parts:
            yield part + _END
        if not data:
            break
    if buffer.strip():
        yield buffer.rstrip("\n")


def _safe_parse(path: Path, start: int, lines: list[str], on_error: OnError | None) -> ProteinRecord | None:
    where = f"{path}:{start}"
    try:
        return parse_entry(lines, where)
    except SepitError as err:
        message = str(err)
        reason = message.split(": ", 1)[1] if message.startswith(where) and ": " in message else message
        _fail(path, start, _entry_id(lines), reason, on_error, type(err))
        return None


def _fail(path: Path, start: int, entry: str, reason: str, on_error: OnError | None,
          error: type[SepitError] = InputFormatError) -> None:
    if on_error is None:
        raise error(f"{path}:{start}: entry {entry}: {reason}")
    on_error(f"{path}:{start}", entry, reason)


def _entry_id(lines: list[str]) -> str:
    for line in lines:
        if line.startswith("AC   "):
            return line[5:].split(";")[0].strip()
    return lines[0][5:].split()[0] if lines and lines[0].startswith("ID   ") else "?"


def parse_entry(lines: list[str], where: str = "entry") -> ProteinRecord:
    """Parse the lines of one entry (without ``//``) into a :class:`ProteinRecord`."""
    groups: dict[str, list[str]] = {}
    seq_parts: list[str] = []
    for i, line in enumerate(lines):
        code = line[:2]
        if code in _SKIP:
            continue
        if code == "  ":
            seq_parts.append(line)
            continue
        if line[2:5] != "   " or not code.isupper():
            raise InputFormatError(f"{where}: line {i + 1} is not a flat-file line: {line[:60]!r}")
        if code == "DR" and line[5:line.find(";")] not in _DR_KEEP:
            continue
        groups.setdefault(code, []).append(line[5:])
    seq_parts = ["".join(seq_parts).replace(" ", "")]
    if "ID" not in groups or "AC" not in groups:
        raise InputFormatError(f"{where}: entry without ID or AC line")
    accessions = [a.strip() for a in " ".join(groups["AC"]).split(";") if a.strip()]
    sequence = validate_sequence("".join(seq_parts), f"{where} ({accessions[0]})")
    _check_length(groups["ID"][0], sequence, f"{where} ({accessions[0]})")
    rec = ProteinRecord(accession=accessions[0], sequence=sequence, accessions=accessions,
                        entry_name=groups["ID"][0].split()[0], source=where)
    _parse_de(groups.get("DE", []), rec)
    gene = _GENE.search(" ".join(groups.get("GN", [])))
    rec.gene = gene.group(1).strip() if gene else ""
    rec.organism = " ".join(groups.get("OS", [])).strip().rstrip(".")
    taxon = _TAXON.search(" ".join(groups.get("OX", [])))
    rec.taxon_id = int(taxon.group(1)) if taxon else None
    rec.comments = parse_comments(groups.get("CC", []))
    rec.family = family_from_similarity(rec.comment("SIMILARITY"))
    _parse_dr(groups.get("DR", []), rec)
    rec.keywords = [k.strip().rstrip(".") for k in " ".join(groups.get("KW", [])).split(";") if k.strip()]
    rec.keywords = [clean_text(k) for k in rec.keywords if k]
    rec.features = parse_features(groups.get("FT", []))
    return rec


def _check_length(id_line: str, sequence: str, where: str) -> None:
    match = re.search(r"(\d+) AA\.", id_line)
    if match and int(match.group(1)) != len(sequence):
        raise InputFormatError(f"{where}: sequence has {len(sequence)} residues, ID line says {match.group(1)}"
                               " (truncated or corrupt SQ block?)")


def _parse_de(de: list[str], rec: ProteinRecord) -> None:
    text = " ".join(de)
    rec_name = text.split("AltName:")[0].split("Contains:")[0].split("Includes:")[0]
    full = _FULL.search(rec_name) or _FULL.search(text)
    rec.protein_name = clean_text(full.group(1)) if full else ""
    for ec in _EC.findall(text):
        if ec not in rec.ec:
            rec.ec.append(ec)


def parse_comments(cc: list[str]) -> dict[str, list[str]]:
    """``CC   -!- TOPIC: text`` blocks -> {TOPIC: [cleaned text, ...]} for the topics in ``CC_TOPICS``."""
    out: dict[str, list[str]] = {}
    topic, buf = None, []
    for line in cc + ["-!- END:"]:
        if line.startswith("-!- ") or line.startswith("-----"):
            if topic in CC_TOPICS and buf:
                text = clean_text(" ".join(buf))
                if text:
                    out.setdefault(topic, []).append(text)
            topic, buf = None, []
            if line.startswith("-!- ") and ":" in line:
                topic, rest = line[4:].split(":", 1)
                buf = [rest]
        elif topic is not None:
            buf.append(line)
    return out


def _parse_dr(dr: list[str], rec: ProteinRecord) -> None:
    for line in dr:
        parts = [p.strip() for p in line.rstrip().rstrip(".").split(";")]
        db = parts[0]
        if db == "GO" and len(parts) >= 3:
            aspect, _, name = parts[2].partition(":")
            rec.go.append(GoTerm(parts[1], GO_ASPECTS.get(aspect, aspect), name.strip()))
        elif db in XREF_DBS and len(parts) >= 2:
            rec.xrefs.append(CrossRef(db, parts[1], tuple(parts[2:])))


def parse_features(ft: list[str]) -> list[Feature]:
    """FT lines (old column layout or current ``start..end`` + qualifiers) -> :class:`Feature` list."""
    raw: list[tuple[str, str, str, list[str]]] = []
    keep = False
    for line in ft:
        if line[:1] != " ":
            head = line.strip()
            keep = head.split(" ", 1)[0] in FEATURE_TYPES
            if not keep:
                continue
            new = _FT_NEW.match(head)
            if new:
                kind = new.group(1) or new.group(4)
                start = new.group(2) if new.group(1) else new.group(5)
                end = new.group(3) if new.group(1) else new.group(5)
                raw.append((kind, start, end, []))
                continue
            old = _FT_OLD.match(head)
            if old:
                raw.append((old.group(1), old.group(2), old.group(3), [old.group(4)]))
        elif keep and raw:
            raw[-1][3].append(line.strip())
    return [Feature(kind, _pos(start), _pos(end), _feature_note(parts)) for kind, start, end, parts in raw]


def _pos(text: str) -> int | None:
    digits = text.strip("<>?")
    return int(digits) if digits.isdigit() else None


def _feature_note(parts: list[str]) -> str:
    text = " ".join(p for p in parts if p)
    if text.startswith("/"):
        return clean_text(dict(_QUAL.findall(text)).get("note", ""))
    return clean_text(_FTID.sub("", text))
