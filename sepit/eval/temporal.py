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
                       max_test: int | None = None, bootstrap: int = 200, model=None, model_sample: int | None = None,
                       workdir: Path | None = None, retrieval: bool = True) -> dict:
    """Results per aspect and model, with the leakage and unknown-term counts (module docstring).

    ``model``: also score a sepit model on a seeded sample of ``model_sample`` test proteins (all: None), its
    open GO answers mapped to GO terms by name and synonym and propagated (score 1 per term), with the baselines
    restricted to the same proteins as "naive (sample)" / "nearest-neighbour (sample)"; with ``retrieval`` the
    evidence comes from the leakage-free reference, indexed in ``workdir``."""
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
    answers = None
    if model is not None:
        from sepit.eval.ontology import GoLexicon

        lexicon = GoLexicon(go)
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
        if model is not None:
            if answers is None:
                answers = _sepit_answers(model, test_raw, test_ids, ref_raw, kept_ids, go, model_sample, workdir,
                                         retrieval)
            mine = {a: dict.fromkeys(lexicon.propagate(lexicon.terms(text, aspect)), 1.0)
                    for a, text in answers[aspect].items()}
            per_model.update({"naive (sample)": {a: naive for a in mine},
                              "nearest-neighbour (sample)": {a: nn[a] for a in mine if a in nn},
                              "sepit (sample)": mine})
        results["aspects"][aspect] = {}
        for name, predicted in per_model.items():
            sample_truth = truth if name in ("naive", "nearest-neighbour") else {a: truth[a] for a in answers[aspect]}
            curves = protein_curves(sample_truth, predicted, ia, exclude=exclude)
            summary = curve_summary(curves)
            summary["fmax_ci95"] = _bootstrap_interval(curves, bootstrap, 0)
            results["aspects"][aspect][name] = summary
        results["aspects"][aspect]["reference_annotated"] = len(ref)
    results["unknown_go_ids"] = {"distinct": len(unknown), "occurrences": sum(unknown.values())}
    return results


CATEGORY = {"MF": "go_mf", "BP": "go_bp", "CC": "go_cc"}


def _sepit_answers(model, test_raw: dict, test_ids: list[str], ref_raw: dict, kept_ids: set[str], go,
                   sample: int | None, workdir: Path | None, retrieval: bool) -> dict[str, dict[str, str]]:
    import random
    import tempfile

    from sepit.retrieval.evidence import trained_settings

    chosen = test_ids if sample is None or sample >= len(test_ids) else random.Random(0).sample(test_ids, sample)
    reference = None
    if retrieval and trained_settings(model) is not None:  # evidence only for a model trained with it
        names = go.names
        reference = {a: (ref_raw[a][0], {CATEGORY[asp]: sorted(names[t] for t in ref_raw[a][1][asp] if t in names)
                                         for asp in GO_COLUMNS})
                     for a in kept_ids}
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="sepit-temporal-"))
    folder.mkdir(parents=True, exist_ok=True)
    return sepit_go_answers(model, {a: test_raw[a][0] for a in chosen}, reference, folder)


def sepit_go_answers(model_dir, proteins: dict[str, str], reference: dict[str, dict[str, list[str]]] | None,
                     workdir: Path, batch_size: int = 8, max_new_tokens: int = 64) -> dict[str, dict[str, str]]:
    """sepit's open answer to the dataset's first GO question of each aspect, per protein: aspect -> accession ->
    text. ``reference`` (accession -> (sequence, category -> GO names)) is indexed in ``workdir`` for
    evidence-grounded answers (give it only for a model trained with retrieval); None: no retrieval.
    Predictions go to ``workdir/sepit_go.jsonl`` (resumable, as ``sepit predict``)."""
    from sepit.api import Sepit
    from sepit.data.questions import OPEN
    from sepit.eval.generate import GenerationSettings
    from sepit.eval.predict import predict_items
    from sepit.eval.records import read_predictions

    sepit = Sepit.from_pretrained(model_dir)
    limit = sepit.processor.max_residues
    items = [{"id": f"{acc}:{aspect}", "accession": acc, "task": "open", "category": CATEGORY[aspect],
              "question": OPEN[CATEGORY[aspect]][0], "answer": "", "choices": [],
              "sequence": seq[:limit], "coords": None, "plddt": None}
             for acc, seq in proteins.items() for aspect in GO_COLUMNS]
    retriever = _reference_retriever(reference, workdir, model_dir) if reference is not None else None
    out = predict_items(sepit.model, sepit.processor, items, Path(workdir) / "sepit_go.jsonl", "sepit",
                        batch_size, GenerationSettings(max_new_tokens=max_new_tokens), retriever=retriever)
    answers: dict[str, dict[str, str]] = {a: {} for a in GO_COLUMNS}
    for row in read_predictions([out]):
        answers[row.id.rsplit(":", 1)[1]][row.accession] = row.text
    return answers


def _reference_retriever(reference: dict, workdir: Path, model_dir):
    """An index of the (leakage-free) reference with GO names as labels, shown as the model was trained."""
    from sepit.retrieval.evidence import Retriever, trained_settings
    from sepit.retrieval.index import Entry, ReferenceIndex, write_index

    folder = Path(workdir) / "reference_index"
    if not (folder / "meta.json").is_file():
        entries = [Entry(acc, seq, labels=labels) for acc, (seq, labels) in sorted(reference.items())]
        write_index(folder, entries, {"fingerprint": "temporal-reference", "split": ["train"]}, method="mmseqs",
                    overwrite=True)
    return Retriever.from_settings(ReferenceIndex(folder, method="mmseqs"), trained_settings(model_dir))
