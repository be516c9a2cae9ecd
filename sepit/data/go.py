"""The Gene Ontology graph, so that closed-set negatives are never accidentally true (DESIGN 3.2).

UniProt lists the most specific GO terms; a protein annotated "nucleoplasm" is also in the "nucleus" (part_of)
and does "protein binding" when it does "enzyme binding" (is_a). A "no" question or a distractor must avoid
these implied terms too. :class:`GeneOntology` gives the ancestors of a term through is_a and part_of (the
true-path relations; ``regulates`` is not followed).

Read from the standard OBO file (``go-basic.obo``, plain or gzipped) or from the ``GO.sqlite`` of
Bioconductor's GO.db (Debian package ``r-bioc-go.db``; ``scripts/install.sh`` extracts it without R).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from sepit.errors import InputFormatError
from sepit.io_utils import open_text

TRUE_PATH = {"is_a", "isa", "part_of", "part of"}
_NAMESPACES = {"molecular_function": "MF", "biological_process": "BP", "cellular_component": "CC"}


class GeneOntology:
    """GO ids -> names and parents (is_a, part_of); ``implied_names`` for a protein's terms.

    ``aspects``: GO id -> ``MF`` | ``BP`` | ``CC``; ``synonyms``: GO id -> synonym labels (both may be empty
    for hand-built graphs); read by the ontology-level scoring of free text (``sepit.eval.ontology``)."""

    def __init__(self, names: dict[str, str], parents: dict[str, set[str]],
                 aspects: dict[str, str] | None = None, synonyms: dict[str, list[str]] | None = None):
        self.names = names
        self.parents = parents
        self.aspects = aspects or {}
        self.synonyms = synonyms or {}
        self.ancestors = lru_cache(maxsize=None)(self._ancestors)

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def load(cls, path: str | Path) -> GeneOntology:
        """An OBO file (``.obo``, ``.obo.gz``) or GO.db's ``GO.sqlite``."""
        path = Path(path)
        if not path.is_file():
            raise InputFormatError(f"GO ontology file not found: {path}")
        with open(path, "rb") as fh:
            is_sqlite = fh.read(16) == b"SQLite format 3\x00"
        onto = _from_sqlite(path) if is_sqlite else _from_obo(path)
        if not onto.names:
            raise InputFormatError(f"{path}: no GO terms found (expected an OBO file or GO.db's GO.sqlite)")
        return onto

    def _ancestors(self, go_id: str) -> frozenset[str]:
        out: set[str] = set()
        stack = list(self.parents.get(go_id, ()))
        while stack:
            term = stack.pop()
            if term not in out:
                out.add(term)
                stack.extend(self.parents.get(term, ()))
        return frozenset(out)

    def implied_names(self, go_ids: Iterable[str]) -> set[str]:
        """Lower-case names of these terms and of all their ancestors (unknown ids contribute nothing)."""
        out: set[str] = set()
        for go_id in go_ids:
            for term in (go_id, *self.ancestors(go_id)):
                if term in self.names:
                    out.add(self.names[term].lower())
        return out


def _from_obo(path: Path) -> GeneOntology:
    names: dict[str, str] = {}
    parents: dict[str, set[str]] = {}
    alt: dict[str, str] = {}
    aspects: dict[str, str] = {}
    synonyms: dict[str, list[str]] = {}
    term: dict | None = None

    def flush() -> None:
        if term and term.get("id") and not term.get("obsolete"):
            names[term["id"]] = term.get("name", "")
            parents[term["id"]] = term["parents"]
            aspects[term["id"]] = term.get("aspect", "")
            synonyms[term["id"]] = term["synonyms"]
            for alt_id in term["alt"]:
                alt[alt_id] = term["id"]

    with open_text(path) as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("["):
                flush()
                term = {"parents": set(), "alt": [], "synonyms": []} if line == "[Term]" else None
            elif term is not None and ": " in line:
                key, value = line.split(": ", 1)
                value = value.split(" ! ", 1)[0].strip()
                if key in ("id", "name"):
                    term[key] = value
                elif key == "namespace":
                    term["aspect"] = _NAMESPACES.get(value, "")
                elif key == "synonym" and value.startswith('"'):
                    term["synonyms"].append(value[1:].split('"', 1)[0])
                elif key == "is_a":
                    term["parents"].add(value.split()[0])
                elif key == "relationship" and value.split()[0] in TRUE_PATH:
                    term["parents"].add(value.split()[1])
                elif key == "alt_id":
                    term["alt"].append(value)
                elif key == "is_obsolete" and value == "true":
                    term["obsolete"] = True
    flush()
    for alt_id, primary in alt.items():  # annotations may still use a merged (secondary) id
        names.setdefault(alt_id, names[primary])
        parents.setdefault(alt_id, {primary})
        aspects.setdefault(alt_id, aspects[primary])
    return GeneOntology(names, parents, aspects, synonyms)


def _from_sqlite(path: Path) -> GeneOntology:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        ids = dict(con.execute("SELECT _id, go_id FROM go_term"))
        names, aspects = {}, {}
        for go_id, name, aspect in con.execute("SELECT go_id, term, ontology FROM go_term"):
            names[go_id], aspects[go_id] = name, aspect
        synonyms: dict[str, list[str]] = {}
        for _id, label, like_id in con.execute("SELECT _id, synonym, like_go_id FROM go_synonym"):
            if _id in ids and not like_id:  # like_go_id rows are secondary ids, not labels
                synonyms.setdefault(ids[_id], []).append(label)
        parents: dict[str, set[str]] = {}
        for aspect in ("bp", "mf", "cc"):
            query = f"SELECT _id, _parent_id, relationship_type FROM go_{aspect}_parents"
            for child, parent, kind in con.execute(query):
                if kind in TRUE_PATH and child in ids and parent in ids:
                    parents.setdefault(ids[child], set()).add(ids[parent])
        con.close()
    except sqlite3.DatabaseError as err:
        raise InputFormatError(f"{path}: not a GO.db SQLite file ({err})") from None
    return GeneOntology(names, parents, aspects, synonyms)
