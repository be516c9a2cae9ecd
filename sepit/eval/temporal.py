"""Temporal GO holdout (``sepit bench temporal``): annotate proteins of a later release from an earlier one.

Reference: an earlier UniProt GO TSV (``Entry, Organism, Sequence`` and the three GO columns, cells
``name [GO:id]; ...``); test: proteins of a later TSV whose accession the reference lacks. Benchmark accessions
and homologs (identity >= threshold, the split's definition, found by MMseqs2) leave the reference first, counted.
Annotations are propagated to ancestors (is_a, part_of) in the given GO graph; ids the graph does not know are
counted and left out.

Baselines (CAFA): ``naive`` scores each term by its frequency among reference proteins annotated in the aspect;
``nearest-neighbour`` (CAFA's BLAST baseline) scores a term by the highest identity of a remaining hit carrying
it. Scores: protein-centric Fmax (bootstrap 95% interval), Smin (information accretion from the reference),
coverage, per aspect (:mod:`sepit.eval.ontology`).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

from sepit.errors import InputFormatError
from sepit.io_utils import open_text

GO_COLUMNS = {"MF": "Gene Ontology (molecular function)", "BP": "Gene Ontology (biological process)",
              "CC": "Gene Ontology (cellular component)"}
_GO_ID = re.compile(r"GO:\d{7}")


def read_go_tsv(path: str | Path) -> dict[str, tuple[str, dict[str, set[str]]]]:
    """Accession -> (sequence, aspect -> GO ids as annotated)."""
    out = {}
    with open_text(path) as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in ("Entry", "Sequence", *GO_COLUMNS.values()) if c not in (reader.fieldnames or [])]
        if missing:
            raise InputFormatError(f"{path}: missing column(s) {', '.join(missing)}")
        for row in reader:
            out[row["Entry"]] = (row["Sequence"].upper(),
                                 {a: set(_GO_ID.findall(row[c] or "")) for a, c in GO_COLUMNS.items()})
    if not out:
        raise InputFormatError(f"{path}: no rows")
    return out


def propagated(go, terms: set[str], aspect: str, unknown: Counter) -> set[str]:
    out: set[str] = set()
    for t in terms:
        if t not in go.names:
            unknown[t] += 1
            continue
        out |= {x for x in (t, *go.ancestors(t)) if go.aspects.get(x) == aspect}
    return out


def temporal_benchmark(reference_tsv, test_tsv, go, identity: float = 0.3, threads: int = 1,
                       max_test: int | None = None, bootstrap: int = 200) -> dict:
    """Results per aspect and model, with the leakage and unknown-term counts (module docstring)."""
    from sepit.eval.bench import Labelled, mmseqs_hits, remove_leakage
    from sepit.eval.go_metrics import _bootstrap_interval
    from sepit.eval.ontology import curve_summary, information_accretion, protein_curves, roots

    ref_raw, test_raw = read_go_tsv(reference_tsv), read_go_tsv(test_tsv)
    test_ids = [a for a in test_raw if a not in ref_raw][: max_test or None]
    hits = mmseqs_hits({a: test_raw[a][0] for a in test_ids}, {a: s for a, (s, _) in ref_raw.items()}, threads)
    kept, leakage = remove_leakage([Labelled(a, "", "") for a in test_ids],
                                   [Labelled(a, "", "") for a in ref_raw], hits, identity)
    kept_ids = {r.accession for r in kept}
    leakage.update(test_in_reference=sum(a in ref_raw for a in test_raw), test=len(test_ids))
    unknown: Counter = Counter()
    exclude = frozenset(roots(go))
    results: dict = {"leakage": leakage, "aspects": {}}
    for aspect in GO_COLUMNS:
        ref = {a: propagated(go, ref_raw[a][1][aspect], aspect, unknown) for a in kept_ids}
        ref = {a: t for a, t in ref.items() if t}
        truth = {a: propagated(go, test_raw[a][1][aspect], aspect, unknown) for a in test_ids}
        ia = information_accretion(list(ref.values()), go.parents)
        freq = Counter(t for terms in ref.values() for t in terms)
        naive = {t: n / len(ref) for t, n in freq.items()}
        nn: dict[str, dict[str, float]] = {}
        for q, t, ident, _ in hits:
            if t in ref and ident < identity:
                scores = nn.setdefault(q, {})
                for term in ref[t]:
                    scores[term] = max(scores.get(term, 0.0), ident)
        per_model = {"naive": dict.fromkeys(test_ids, naive), "nearest-neighbour": nn}
        results["aspects"][aspect] = {}
        for model, predicted in per_model.items():
            curves = protein_curves(truth, predicted, ia, exclude=exclude)
            summary = curve_summary(curves)
            summary["fmax_ci95"] = _bootstrap_interval(curves, bootstrap, 0)
            results["aspects"][aspect][model] = summary
        results["aspects"][aspect]["reference_annotated"] = len(ref)
    results["unknown_go_ids"] = {"distinct": len(unknown), "occurrences": sum(unknown.values())}
    return results
