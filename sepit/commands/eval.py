"""``sepit eval``: score predictions files and write the report (metrics.json, report.md, plots)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sepit.commands import existing_file, positive_int
from sepit.errors import ConfigError
from sepit.resources import MINILM


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score predictions files (BLEU, ROUGE, METEOR, BERTScore, accuracy, ECE) into a report",
        description="Score predictions JSONL files (one row per `model` value in the report) and write "
        "DIR/report.md, DIR/metrics.json and PNG plots.",
    )
    p.add_argument(
        "--predictions",
        nargs="+",
        required=True,
        type=existing_file,
        metavar="JSONL",
        help="predictions files (sepit predict / sepit baseline output); models may be mixed",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="report folder (written atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    p.add_argument(
        "--bertscore-model",
        default=MINILM,
        help=f"BERTScore encoder: offline name ({MINILM}), local HF folder (e.g. PubMedBERT) or hub id",
    )
    p.add_argument(
        "--bertscore-layers", type=int, default=None, help="BERTScore layer (default: the model's last layer)"
    )
    p.add_argument("--bertscore-batch-size", type=positive_int, default=16,
                   help="BERTScore pairs per batch (raise on GPU)")
    p.add_argument("--no-bertscore", action="store_true", help="skip BERTScore")
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (no WordNet needed)")
    p.add_argument(
        "--no-paper-bleu",
        action="store_true",
        help="skip the paper-compatible per-item BLEU on WordPiece tokens",
    )
    p.add_argument(
        "--ece-bins", type=positive_int, default=10, help="confidence bins for ECE and the reliability diagram"
    )
    p.add_argument(
        "--device", default=None, help="device for BERTScore (default: cuda if available, else cpu)"
    )
    p.add_argument("--data", default=None, metavar="DIR",
                   help="the built dataset the predictions come from: identity bins (DIR/identity_to_train.json, "
                   "computed and stored once when missing), GO information accretion and the location vocabulary "
                   "from its training split")
    p.add_argument("--identity", default=None, metavar="JSON",
                   help="identity file to read or create instead of DIR/identity_to_train.json")
    p.add_argument("--go", default=None, metavar="FILE",
                   help="GO graph (OBO or GO.db's GO.sqlite; default: $SEPIT_GO or the cached GO.sqlite; "
                   "'none': no GO scoring)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for 95%% intervals (0: none)")
    p.add_argument("--threads", type=int, default=1, help="alignment threads for the identity computation")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sepit.eval.go_metrics import OntologyContext
    from sepit.eval.metrics import EvalConfig, Scorers, evaluate
    from sepit.eval.records import read_predictions
    from sepit.eval.report import write_report
    from sepit.resources import default_go_ontology

    if Path(args.out).exists() and not args.overwrite:
        raise ConfigError(f"output folder {args.out} already exists (pass --overwrite to replace it)")
    rows = read_predictions(args.predictions)
    config = EvalConfig(
        bertscore=not args.no_bertscore,
        bertscore_model=args.bertscore_model,
        bertscore_layers=args.bertscore_layers,
        bertscore_batch_size=args.bertscore_batch_size,
        meteor=not args.no_meteor,
        paper_bleu=not args.no_paper_bleu,
        ece_bins=args.ece_bins,
        device=args.device,
        bootstrap=args.bootstrap,
    )
    if args.identity and not args.data and not Path(args.identity).is_file():
        raise ConfigError(f"identity file {args.identity} not found (pass --data DIR to compute it)")
    identity = None
    if args.data or args.identity:
        from sepit.eval import identity_bins

        identity = (identity_bins.load_or_compute(args.data, args.identity, args.threads) if args.data
                    else identity_bins.read(args.identity))
    ontology = OntologyContext.build(default_go_ontology(args.go), args.data, args.bootstrap)
    results = evaluate(rows, Scorers(config), ontology=ontology, identity=identity)
    out = write_report(results, args.out, overwrite=args.overwrite)
    print(f"wrote {out / 'report.md'} ({len(results['models'])} models, {len(rows)} predictions)")
    return 0
