"""From a :class:`ProteinRecord` to answer texts (open-ended) and discrete labels (closed-set questions)."""

from __future__ import annotations

import re

from sepit.data.questions import EC_CLASSES
from sepit.data.records import Feature, ProteinRecord, split_locations

TOPIC_CATEGORY = {
    "FUNCTION": "function", "CATALYTIC ACTIVITY": "catalytic_activity", "COFACTOR": "cofactor",
    "SUBUNIT": "subunit", "SUBCELLULAR LOCATION": "subcellular_location",
    "TISSUE SPECIFICITY": "tissue_specificity", "INDUCTION": "induction", "DOMAIN": "domain", "PTM": "ptm",
    "PATHWAY": "pathway", "DISEASE": "disease", "ACTIVITY REGULATION": "activity_regulation",
    "BIOPHYSICOCHEMICAL PROPERTIES": "biophysicochemical",
}
GO_CATEGORY = {"MF": "go_mf", "BP": "go_bp", "CC": "go_cc"}
FEATURE_CATEGORY = {
    "DOMAIN": "domain_feature", "MOTIF": "motif", "ACT_SITE": "active_site", "BINDING": "binding_site",
    "METAL": "binding_site", "NP_BIND": "binding_site", "CA_BIND": "binding_site",
    "TRANSMEM": "transmembrane", "SIGNAL": "signal_peptide",
}
BORING_KEYWORDS = frozenset({"Complete proteome", "Reference proteome", "3D-structure", "Direct protein"
                             " sequencing", "Polymorphism", "Alternative splicing"})
_FIELD_NAME = re.compile(r"\b(?:Reaction|Name|Note|Event|Kinetic parameters|KM|Vmax)=")
_COFACTOR_NAME = re.compile(r"Name=([^;]+)")


def open_answers(rec: ProteinRecord) -> dict[str, str]:
    """Category -> cleaned answer text, for every annotation the record has."""
    out: dict[str, str] = {}
    for topic, category in TOPIC_CATEGORY.items():
        text = rec.comment(topic)
        if text:
            out[category] = _tidy_fields(text)
    if rec.family:
        out["family"] = f"Belongs to the {rec.family}."
    if rec.ec:
        out["ec"] = "; ".join(f"EC {ec}" for ec in rec.ec)
    for aspect, category in GO_CATEGORY.items():
        names = _unique(t.name for t in rec.go if t.aspect == aspect and t.name)
        if names:
            out[category] = "; ".join(names)
    keywords = [k for k in rec.keywords if k not in BORING_KEYWORDS]
    if keywords:
        out["keywords"] = ", ".join(keywords)
    out.update(_feature_answers(rec.features))
    return out


def feature_spans(rec: ProteinRecord) -> list[list[int]]:
    """0-based half-open [start, end) residue spans of the record's positioned features (the flat file's FT lines:
    domains, sites, regions, ...), clamped to the sequence, sorted, without repeats; what a feature-centred crop
    window aims at."""
    n = len(rec.sequence)
    spans = {(max(0, f.start - 1), min(n, f.end)) for f in rec.features
             if f.start is not None and f.end is not None and f.start <= f.end and f.start <= n}
    return [list(span) for span in sorted(spans)]


def closed_labels(rec: ProteinRecord) -> dict[str, list[str]]:
    """Category -> discrete labels usable in yes/no and multiple-choice questions."""
    labels = {
        "subcellular_location": split_locations(rec.comment("SUBCELLULAR LOCATION")),
        "family": [rec.family] if rec.family else [],
        "ec": [e for e in rec.ec if "-" not in e and "n" not in e],
        "ec_class": _unique(EC_CLASSES[e[0]] for e in rec.ec if e[:1] in EC_CLASSES),
        "cofactor": _unique(n.strip() for n in _COFACTOR_NAME.findall(rec.comment("COFACTOR"))),
        "keywords": [k for k in rec.keywords if k not in BORING_KEYWORDS],
        "domain_feature": _unique(_domain_name(f.note) for f in rec.features if f.type == "DOMAIN"),
    }
    for aspect, category in GO_CATEGORY.items():
        labels[category] = _unique(t.name for t in rec.go if t.aspect == aspect and t.name)
    return {k: [v for v in vals if v] for k, vals in labels.items() if any(vals)}


def caption(rec: ProteinRecord, answers: dict[str, str]) -> str:
    """The caption answer: the FUNCTION text, else a description composed from other annotations."""
    if "function" in answers:
        return answers["function"]
    parts = []
    if rec.protein_name:
        parts.append(f"{rec.protein_name}.")
    for category, lead in (("family", ""), ("catalytic_activity", "Catalytic activity: "),
                           ("subcellular_location", "Location: "), ("go_mf", "Molecular function: "),
                           ("go_bp", "Biological process: "), ("go_cc", "Cellular component: ")):
        if category in answers:
            parts.append(f"{lead}{answers[category].rstrip('.')}.")
    return " ".join(parts) if len(parts) > (1 if rec.protein_name else 0) else ""


def _feature_answers(features: list[Feature]) -> dict[str, str]:
    groups: dict[str, list[str]] = {}
    for f in features:
        category = FEATURE_CATEGORY.get(f.type)
        if category is None or f.start is None:
            continue
        where = f"position {f.start}" if f.end in (None, f.start) else f"positions {f.start}-{f.end}"
        note = _domain_name(f.note) if category == "domain_feature" else f.note.rstrip(".")
        groups.setdefault(category, []).append(f"{note} ({where})" if note else where.capitalize())
    return {category: "; ".join(_unique(items)) + "." for category, items in groups.items()}


def _domain_name(note: str) -> str:
    """``"Protein kinase domain."`` / ``"Protein kinase; 1"`` -> ``"Protein kinase"``."""
    name = note.split(";")[0].strip().rstrip(".")
    return re.sub(r"\s+domain$", "", name, flags=re.IGNORECASE).strip()


def _tidy_fields(text: str) -> str:
    """Drop flat-file field names (``Reaction=``, ``Name=``, ``Note=``) from structured comments."""
    return re.sub(r"\s+", " ", _FIELD_NAME.sub("", text)).strip()


def _unique(items) -> list[str]:
    out: list[str] = []
    for item in items:
        if item and item not in out:
            out.append(item)
    return out
