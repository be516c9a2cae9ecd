"""External benchmarks (``sepit bench``): DeepLoc 10-class localisation with leakage removed first.

The reference (the proteins a baseline may copy from) loses, before anything is predicted, every protein whose
accession is in the benchmark and every homolog of a benchmark protein: identity >= ``identity`` with the split's
definition (identical aligned residues / shorter length). Homologs are found with MMseqs2 (all benchmark proteins
against all reference proteins, sensitivity 7.5); the neighbour a baseline actually copies from is then checked
exactly (Smith-Waterman, :func:`sepit.data.splits.identity_matrix`) and skipped if it reaches the threshold. Both
removals are counted in the results.

Baselines: ``nearest-neighbour`` (the label of the best-scoring remaining MMseqs2 hit; proteins without a hit get
the naive answer, counted) and ``naive`` (the reference's most frequent class). Predictions are written in the
predictions-file format (closed-set items with the 10 classes as choices), so ``sepit eval`` scores them too.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from sepit.errors import InputFormatError, SepitError
from sepit.eval.records import Prediction
from sepit.io_utils import open_text

DEEPLOC_CLASSES = ("Cell.membrane", "Cytoplasm", "Endoplasmic.reticulum", "Extracellular", "Golgi.apparatus",
                   "Lysosome/Vacuole", "Mitochondrion", "Nucleus", "Peroxisome", "Plastid")
QUESTION = "Where in the cell is this protein located?"
# the options a model reads (DeepLoc's class names are identifiers, not words)
READABLE = {"Cell.membrane": "cell membrane", "Endoplasmic.reticulum": "endoplasmic reticulum",
            "Golgi.apparatus": "Golgi apparatus", "Lysosome/Vacuole": "lysosome or vacuole"}


@dataclass(frozen=True)
class Labelled:
    accession: str
    label: str
    sequence: str


def read_deeploc(path: str | Path, unknown: list[str] | None = None) -> list[Labelled]:
    """DeepLoc FASTA (``>ACC Location-M|S|U [test]``). An unknown location is an error naming the line, unless
    ``unknown`` is a list: such records are then left out and their accessions appended to it."""
    out: list[Labelled] = []
    header, seq, where = None, [], ""
    with open_text(path) as fh:
        for lineno, line in enumerate([*fh, ">"], 1):
            line = line.strip()
            if line.startswith(">"):
                if header is not None:
                    try:
                        out.append(_deeploc_record(header, "".join(seq), where))
                    except UnknownLabel:
                        if unknown is None:
                            raise
                        unknown.append(header.split()[0])
                header, seq, where = line[1:], [], f"{path}:{lineno}"
            elif line:
                seq.append(line)
    if not out:
        raise InputFormatError(f"{path}: no FASTA records with a known DeepLoc location")
    return out


class UnknownLabel(InputFormatError):
    pass


def _deeploc_record(header: str, sequence: str, where: str) -> Labelled:
    fields = header.split()
    if len(fields) < 2 or not sequence:
        raise InputFormatError(f"{where}: expected '>ACCESSION Location-M|S|U' and a sequence, got {header!r}")
    location = fields[1].rsplit("-", 1)[0]
    if location not in DEEPLOC_CLASSES:
        raise UnknownLabel(f"{where}: unknown DeepLoc location {location!r} (known: {', '.join(DEEPLOC_CLASSES)})")
    return Labelled(fields[0], location, sequence.upper())


def mmseqs_hits(queries: dict[str, str], targets: dict[str, str], threads: int = 1) -> list[tuple]:
    """(query, target, identity over the shorter length, bit score) of ``mmseqs easy-search``."""
    exe = shutil.which("mmseqs")
    if exe is None:
        raise SepitError("mmseqs not found on PATH (install the Debian package 'mmseqs2')")
    from sepit.data.splits import GAP_EXTEND, GAP_OPEN

    with tempfile.TemporaryDirectory(prefix="sepit-bench-") as tmp:
        q, t, hits = Path(tmp) / "q.fasta", Path(tmp) / "t.fasta", Path(tmp) / "hits.tsv"
        q.write_text("".join(f">{a}\n{s}\n" for a, s in queries.items()))
        t.write_text("".join(f">{a}\n{s}\n" for a, s in targets.items()))
        cmd = [exe, "easy-search", str(q), str(t), str(hits), str(Path(tmp) / "work"), "-a", "-s", "7.5", "-e",
               "10", "--max-seqs", "300", "--gap-open", str(GAP_OPEN), "--gap-extend", str(GAP_EXTEND),
               "--format-output", "query,target,nident,qlen,tlen,bits", "--threads", str(threads), "-v", "1"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SepitError(f"mmseqs easy-search failed: {proc.stderr.strip()[-500:]}")
        out = []
        for line in hits.read_text().splitlines():
            qa, ta, nident, qlen, tlen, bits = line.split("\t")
            out.append((qa, ta, int(nident) / min(int(qlen), int(tlen)), float(bits)))
    return out


def remove_leakage(test: list[Labelled], reference: list[Labelled], hits: list[tuple], identity: float
                   ) -> tuple[list[Labelled], dict]:
    """Reference without benchmark accessions and without homologs (>= ``identity``) of benchmark proteins."""
    test_ids = {t.accession for t in test}
    same = {r.accession for r in reference if r.accession in test_ids}
    homologs = {t for _, t, ident, _ in hits if ident >= identity} - same
    kept = [r for r in reference if r.accession not in same | homologs]
    return kept, {"reference": len(reference), "same_accession": len(same), "homologs": len(homologs),
                  "kept": len(kept), "identity_threshold": identity}


def _item(p: Labelled, prediction: str, model: str, identity: float | None = None) -> Prediction:
    extra = {"identity": identity} if model != "naive" else {}
    return Prediction(id=p.accession, accession=p.accession, task="closed", category="subcellular_location",
                      question=QUESTION, answer=p.label, prediction=prediction, model=model,
                      choices=DEEPLOC_CLASSES, identity=identity, extra=extra)


def deeploc_predictions(test: list[Labelled], reference: list[Labelled], identity: float = 0.3,
                        threads: int = 1) -> tuple[list[Prediction], dict]:
    """Naive and nearest-neighbour predictions for the DeepLoc test proteins, and the leakage counts."""
    from sepit.data.splits import identity_matrix, opal_safe, total_residues

    test_seqs = {t.accession: t.sequence for t in test}
    ref_all = {r.accession: r.sequence for r in reference}
    ref_residues = total_residues(ref_all.values())
    hits = mmseqs_hits(test_seqs, ref_all, threads)
    kept, counts = remove_leakage(test, reference, hits, identity)
    labels = {r.accession: r.label for r in kept}
    prior = Counter(labels.values()).most_common(1)[0][0]
    ranked: dict[str, list[tuple[float, str]]] = {}
    for q, t, _, bits in hits:
        if t in labels:
            ranked.setdefault(q, []).append((bits, t))
    rows, fallback, skipped = [], 0, 0
    for p in test:
        rows.append(_item(p, prior, "naive"))
        hit = None
        for _, t in sorted(ranked.get(p.accession, []), reverse=True):
            exact = float(identity_matrix([opal_safe(p.sequence)], [opal_safe(ref_all[t])],
                                          db_residues=ref_residues)[0, 0])
            if exact < identity:
                hit = (t, exact)
                break
            skipped += 1  # MMseqs2 under-estimated it: a homolog after all
        if hit is None:
            fallback += 1
            rows.append(_item(p, prior, "nearest-neighbour", None))
        else:
            rows.append(_item(p, labels[hit[0]], "nearest-neighbour", hit[1]))
    counts.update(naive_answer=prior, nn_fallback_to_naive=fallback, nn_neighbours_skipped_exact=skipped)
    return rows, counts


def per_class_accuracy(rows: list[Prediction]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for cls in DEEPLOC_CLASSES:
        sel = [r for r in rows if r.answer == cls]
        if sel:
            out[cls] = {"n": len(sel), "accuracy": sum(r.text == r.answer for r in sel) / len(sel)}
    return out


def sepit_deeploc(test: list[Labelled], model_dir: str | Path, n: int | None = None, seed: int = 0,
                  batch_size: int = 8, device: str | None = None) -> list[Prediction]:
    """sepit's answers by option likelihood over the 10 classes (no retrieval: a reference index could hold
    homologs of the test proteins), for all test proteins or a seeded sample of ``n``; proteins longer than the
    model's limit are cropped (counted in each row's ``extra``)."""
    import random

    from sepit.api import Sepit
    from sepit.eval.generate import score_options

    sample = test if n is None or n >= len(test) else random.Random(seed).sample(test, n)
    sepit = Sepit.from_pretrained(model_dir, device=device)
    limit = sepit.processor.max_residues
    names = {READABLE.get(c, c.lower()): c for c in DEEPLOC_CLASSES}
    items = [{"sequence": p.sequence[:limit], "question": QUESTION, "choices": list(names),
              "category": "subcellular_location"} for p in sample]
    probs = score_options(sepit.model, sepit.processor, items, batch_size)
    rows = []
    for p, pr in zip(sample, probs, strict=True):
        row = replace(_item(p, names[max(pr, key=pr.get)], "sepit"),
                      option_probs={names[k]: v for k, v in pr.items()})
        row.extra["cropped"] = len(p.sequence) > limit
        rows.append(row)
    return rows
