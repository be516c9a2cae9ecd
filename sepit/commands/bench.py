"""``sepit bench deeploc``: external benchmarks with leakage removed from the reference first."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from sepit.commands import positive_int
from sepit.errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="external benchmarks (DeepLoc localisation) against the nearest-neighbour and naive baselines",
        description="Benchmark accessions and their homologs (identity >= --identity, the split's definition) are "
        "removed from the reference first and counted; predictions are written in the predictions-file format.",
    )
    kinds = p.add_subparsers(dest="bench", metavar="<benchmark>", required=True)
    d = kinds.add_parser("deeploc", help="DeepLoc 1.0 test set: 10-class localisation accuracy (and per class)")
    d.add_argument("--test", required=True, metavar="FASTA", help="deeploc_test_set.fasta[.gz]")
    d.add_argument("--reference", required=True, metavar="FASTA",
                   help="labelled proteins the baselines may copy from (e.g. deeploc_our_val_set.fasta.gz)")
    d.add_argument("--drop-unknown", action="store_true",
                   help="leave reference proteins with a location outside the 10 classes out (counted) instead of "
                   "refusing the file (the DeepLoc validation set holds 23 'Cytoplasm-Nucleus' proteins)")
    d.add_argument("--identity", type=float, default=0.3, help="homolog threshold (default 0.3)")
    d.add_argument("--threads", type=int, default=1, help="MMseqs2/alignment threads")
    d.add_argument("--out", required=True, metavar="DIR", help="results folder (written atomically)")
    d.add_argument("--overwrite", action="store_true", help="replace an existing results folder")
    d.add_argument("--model", metavar="DIR", help="also score a sepit model (option likelihood over the 10 classes)")
    d.add_argument("--model-sample", type=positive_int, default=None, metavar="N",
                   help="score the model on a seeded sample of N test proteins (baselines are scored on the same "
                   "sample too, in extra rows)")
    d.set_defaults(func=run_deeploc)
    t = kinds.add_parser("temporal", help="temporal GO holdout: annotate later proteins from an earlier release")
    t.add_argument("--reference", required=True, metavar="TSV", help="earlier UniProt GO TSV (e.g. Swiss-Prot 2014)")
    t.add_argument("--test", required=True, metavar="TSV",
                   help="later UniProt GO TSV; its proteins absent from the reference are the test set")
    t.add_argument("--go", default=None, metavar="FILE", help="GO graph (default: $SEPIT_GO or the cached GO.sqlite)")
    t.add_argument("--identity", type=float, default=0.3, help="homolog threshold (default 0.3)")
    t.add_argument("--max-test", type=int, default=None, help="only the first N test proteins (quick runs)")
    t.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the Fmax intervals")
    t.add_argument("--threads", type=int, default=1, help="MMseqs2 threads")
    t.add_argument("--out", required=True, metavar="DIR", help="results folder (written atomically)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing results folder")
    t.add_argument("--model", metavar="DIR", help="also score a sepit model (its open GO answers, mapped to terms)")
    t.add_argument("--model-sample", type=positive_int, default=None, metavar="N",
                   help="score the model on a seeded sample of N test proteins (the baselines on the sample too)")
    t.add_argument("--no-retrieval", action="store_true",
                   help="the model answers without evidence (default: from the leakage-free reference, when the "
                        "model was trained with retrieval)")
    t.add_argument("--workdir", default=None, metavar="DIR",
                   help="where the model's predictions and the reference index go (resumable; default: a temp dir)")
    t.set_defaults(func=run_temporal)


def run_deeploc(args: argparse.Namespace) -> int:
    from sepit.eval.bench import deeploc_predictions, per_class_accuracy, read_deeploc
    from sepit.eval.metrics import wilson_interval
    from sepit.eval.records import write_predictions
    from sepit.io_utils import atomic_dir

    if Path(args.out).exists() and not args.overwrite:
        raise ConfigError(f"output folder {args.out} already exists (pass --overwrite to replace it)")
    dropped: list[str] = []
    test = read_deeploc(args.test)
    reference = read_deeploc(args.reference, dropped if args.drop_unknown else None)
    rows, leakage = deeploc_predictions(test, reference, args.identity, args.threads)
    leakage["reference_unknown_label_dropped"] = len(dropped)
    if args.model:
        from sepit.eval.bench import sepit_deeploc

        mine = sepit_deeploc(test, args.model, args.model_sample)
        if args.model_sample and args.model_sample < len(test):  # the baselines on the same proteins
            ids = {r.accession for r in mine}
            rows += [replace(r, model=f"{r.model} (sample)") for r in rows if r.accession in ids]
        rows += mine
    results: dict = {"benchmark": "deeploc", "test": str(args.test), "reference": str(args.reference),
                     "n_test": len(test), "leakage": leakage, "models": {}}
    for model in sorted({r.model for r in rows}):
        mine = [r for r in rows if r.model == model]
        correct = sum(r.prediction == r.answer for r in mine)
        results["models"][model] = {"n": len(mine), "accuracy": correct / len(mine),
                                    "accuracy_ci95": wilson_interval(correct, len(mine)),
                                    "per_class": per_class_accuracy(mine)}
    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        write_predictions(rows, tmp / "predictions.jsonl")
        (tmp / "results.json").write_text(json.dumps(results, indent=2))
    for model, m in results["models"].items():
        lo, hi = m["accuracy_ci95"]
        print(f"{model}: accuracy {100 * m['accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] (n={m['n']})")
    print(f"reference: {leakage['reference']} proteins, removed {leakage['same_accession']} benchmark accessions "
          f"and {leakage['homologs']} homologs; kept {leakage['kept']}")
    return 0


def run_temporal(args: argparse.Namespace) -> int:
    from sepit.data.go import GeneOntology
    from sepit.eval.temporal import temporal_benchmark
    from sepit.io_utils import atomic_dir
    from sepit.resources import default_go_ontology

    if Path(args.out).exists() and not args.overwrite:
        raise ConfigError(f"output folder {args.out} already exists (pass --overwrite to replace it)")
    go_path = default_go_ontology(args.go)
    if not go_path:
        raise ConfigError("no GO graph: pass --go FILE (OBO or GO.sqlite) or run scripts/install.sh")
    results = temporal_benchmark(args.reference, args.test, GeneOntology.load(go_path), args.identity,
                                 args.threads, args.max_test, args.bootstrap, model=args.model,
                                 model_sample=args.model_sample, workdir=args.workdir,
                                 retrieval=not args.no_retrieval)
    results.update(benchmark="temporal", reference=str(args.reference), test=str(args.test), go=go_path)
    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        (tmp / "results.json").write_text(json.dumps(results, indent=2))
    for aspect, per in results["aspects"].items():
        for model in [k for k in per if k != "reference_annotated"]:
            m = per[model]
            print(f"{aspect} {model}: Fmax {m.get('fmax', 0):.3f} Smin {m.get('smin', float('nan')):.2f} "
                  f"coverage {m.get('coverage', 0):.2f} (n={m['n']})")
    print(f"leakage: {results['leakage']}")
    return 0
