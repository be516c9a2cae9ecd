"""The protein record every reader produces (flat file, TSV), and shared cleaning/validation helpers.

A :class:`ProteinRecord` holds what DESIGN section 3.1 lists: names, organism, sequence, CC topics (cleaned
text per topic), EC numbers, GO terms, keywords, features and cross-references (PDB, AlphaFoldDB, Pfam,
InterPro).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sepit.errors import SequenceError

# ESM-2 residue letters (same set as sepit.model.esm_tokenizer.RESIDUES; kept here so data code does not
# import transformers).
RESIDUES = frozenset("LAGVSERTIDPKQNFYMHWCXBUZO")

CC_TOPICS = (
    "FUNCTION", "CATALYTIC ACTIVITY", "COFACTOR", "SUBUNIT", "SUBCELLULAR LOCATION", "TISSUE SPECIFICITY",
    "INDUCTION", "DOMAIN", "PTM", "PATHWAY", "SIMILARITY", "DISEASE", "ACTIVITY REGULATION",
    "BIOPHYSICOCHEMICAL PROPERTIES",
)
XREF_DBS = ("PDB", "AlphaFoldDB", "Pfam", "InterPro")
GO_ASPECTS = {"F": "MF", "P": "BP", "C": "CC"}


@dataclass(frozen=True)
class GoTerm:
    """One GO annotation: ``id`` like GO:0005515, ``aspect`` MF/BP/CC, ``name``."""

    id: str
    aspect: str
    name: str


@dataclass(frozen=True)
class Feature:
    """One sequence feature (FT line): type (e.g. DOMAIN, ACT_SITE), 1-based positions, cleaned note."""

    type: str
    start: int | None
    end: int | None
    note: str = ""


@dataclass(frozen=True)
class CrossRef:
    """A DR cross-reference: ``db`` (PDB, AlphaFoldDB, Pfam, InterPro), ``id`` and the remaining fields."""

    db: str
    id: str
    fields: tuple[str, ...] = ()

    def pdb_chains(self) -> list[str]:
        """Chains of a PDB cross-reference (``A/B=1-233`` -> ["A", "B"]); empty when unknown."""
        if self.db != "PDB" or not self.fields:
            return []
        chains: list[str] = []
        for part in self.fields[-1].rstrip(".").split(","):
            ids = part.split("=")[0].strip()
            chains.extend(c for c in ids.split("/") if c and c != "-")
        return chains


@dataclass
class ProteinRecord:
    """One UniProt entry, from a flat file or a TSV export. ``source`` names where it came from."""

    accession: str
    sequence: str
    accessions: list[str] = field(default_factory=list)
    entry_name: str = ""
    protein_name: str = ""
    gene: str = ""
    organism: str = ""
    taxon_id: int | None = None
    comments: dict[str, list[str]] = field(default_factory=dict)
    ec: list[str] = field(default_factory=list)
    go: list[GoTerm] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    features: list[Feature] = field(default_factory=list)
    xrefs: list[CrossRef] = field(default_factory=list)
    family: str = ""
    source: str = ""

    def comment(self, topic: str) -> str:
        """All cleaned texts of one CC topic joined by a space ("" when absent)."""
        return " ".join(self.comments.get(topic, []))

    def xref_ids(self, db: str) -> list[str]:
        return [x.id for x in self.xrefs if x.db == db]


_ECO = re.compile(r"\{ECO:[^{}]*\}")
_BRACES = re.compile(r"\{[^{}]*\}")
_PUBMED = re.compile(r"\(\s*(?:PubMed|Ref\.)\s*:?\s*[\w.]+(?:\s*,\s*(?:PubMed|Ref\.)\s*:?\s*[\w.]+)*\s*\)")
_PUBMED_BARE = re.compile(r"(?:PubMed|Ref\.)\s*:?\s*\d+,?")
_QUALIFIER = re.compile(r"\s*\((?:By similarity|Probable|Potential|Curated)\)")
_XREF = re.compile(r"\b(?:Xref|Evidence)=[^;]*;?")
_EMPTY_PARENS = re.compile(r"\(\s*[,;]?\s*\)")
_SPACE_PUNCT = re.compile(r"\s+([.,;:])")
_DOUBLE_PUNCT = re.compile(r"([.;,])\s*(?:[.;,]\s*)+")
_WS = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Answer text without evidence tags ``{ECO:...}``, PubMed/Ref citations, Xref/Evidence fields, curly-brace
    clutter and old-style qualifiers like "(By similarity)"; whitespace normalised."""
    if "{" in text:
        text = _BRACES.sub("", _ECO.sub("", text))
    if "PubMed" in text or "Ref." in text:
        text = _PUBMED_BARE.sub("", _PUBMED.sub("", text))
    if "(" in text:
        text = _EMPTY_PARENS.sub("", _QUALIFIER.sub("", text))
    if "=" in text:
        text = _XREF.sub("", text)
    text = _WS.sub(" ", text)
    if " ." in text or " ," in text or " ;" in text or " :" in text:
        text = _SPACE_PUNCT.sub(r"\1", text)
    text = _DOUBLE_PUNCT.sub(r"\1 ", text)
    return text.strip().strip(";,").strip()


def validate_sequence(sequence: str, where: str) -> str:
    """Upper-case ``sequence`` and check its letters against the ESM-2 alphabet.

    Raises :class:`SequenceError` naming ``where`` (file and record) and the first bad position.
    """
    seq = sequence.upper()
    if not seq:
        raise SequenceError(f"{where}: empty sequence")
    if RESIDUES.issuperset(seq):
        return seq
    for i, aa in enumerate(seq):
        if aa not in RESIDUES:
            raise SequenceError(f"{where}: invalid residue {aa!r} at position {i + 1}")
    return seq


_FAMILY = re.compile(r"Belongs to the (.+?(?:superfamily|family))", re.IGNORECASE)


def family_from_similarity(text: str) -> str:
    """``"Belongs to the 14-3-3 family."`` -> ``"14-3-3 family"`` ("" when the text names no family)."""
    match = _FAMILY.search(text)
    return match.group(1).strip() if match else ""


_LOCATION_PREFIX = re.compile(r"^\[[^\]]*\]:\s*")


def split_locations(text: str) -> list[str]:
    """Location terms of a cleaned SUBCELLULAR LOCATION text (``"Cell membrane; Multi-pass membrane protein.
    Nucleus. Note=..."`` -> ["Cell membrane", "Nucleus"]), first term of each sentence, de-duplicated."""
    text = text.replace("SUBCELLULAR LOCATION:", " ")
    text = re.split(r"\bNote=", text)[0]
    out: list[str] = []
    for sentence in re.split(r"\.\s+|\.$", text):
        term = _LOCATION_PREFIX.sub("", sentence.strip()).split(";")[0].split(",")[0].strip()
        if term and len(term) < 60 and term not in out:
            out.append(term)
    return out
