"""``sepit predict``: answer every item of a dataset split with a trained model (resumable)."""

from __future__ import annotations

import argparse

from sepit.commands import existing_dir, positive_int, unit_interval


def register(sub) -> None:
    p = sub.add_parser("predict", help="answer a dataset split with a model, write predictions JSONL",
                       description="Batched generation (and likelihood scoring of closed-set options) over "
                                   "a split of a built dataset. Resumable: rerun the same command to continue.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, type=existing_dir, help="sepit model folder (stage 1 or 2 output)")
    p.add_argument("--data", required=True, type=existing_dir, help="built dataset folder (sepit data build)")
    p.add_argument("--split", default="test", help="which split to answer")
    p.add_argument("--out", required=True, help="predictions JSONL to write")
    p.add_argument("--name", default=None, help="model name in reports (default: the folder name)")
    p.add_argument("--tasks", nargs="*", default=None, help="only these tasks (caption, open, closed)")
    p.add_argument("--max-items", type=positive_int, default=None, help="answer at most this many items")
    p.add_argument("--max-residues", type=positive_int, default=None, help="crop proteins to this many residues")
    p.add_argument("--batch-size", type=positive_int, default=8, help="items per generation batch")
    p.add_argument("--max-new-tokens", type=positive_int, default=128, help="generation length limit")
    p.add_argument("--no-structure", action="store_true", help="answer from sequences alone (ablation)")
    p.add_argument("--no-score", action="store_true", help="skip likelihood scoring of closed-set options")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--index", default=None, help="reference index (sepit index build): answers grounded in "
                                                 "annotated homologs, rows carry evidence and citations")
    p.add_argument("--top-k", type=positive_int, default=None,
                   help="hits shown per question (with --index; default: as the model was trained, else 3)")
    p.add_argument("--vote-weight", type=unit_interval, default=None,
                   help="closed-set: weight of the evidence's label vote mixed with the model's option "
                        "probabilities (0 = the model alone; default: the model's retrieval.vote_weight, else 0.5)")
    p.add_argument("--no-retrieval", action="store_true", help="ignore --index (the model without retrieval)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from sepit.api import Sepit
    from sepit.data.store import DatasetStore
    from sepit.errors import SepitError, reading
    from sepit.eval.generate import GenerationSettings
    from sepit.eval.predict import dataset_items, predict_items

    with reading(f"--data {args.data}"):  # the dataset first: a bad one fails before the model loads
        items = dataset_items(DatasetStore(args.data), args.split, args.max_items, args.tasks, args.max_residues,
                              structure=not args.no_structure)
    if not items:
        raise SepitError(f"--data {args.data}: no items in split {args.split!r}"
                         + (f" for tasks {args.tasks}" if args.tasks else ""))
    with reading(f"--model {args.model}"):
        sepit = Sepit.from_pretrained(args.model, device=args.device)
    name = args.name or Path(args.model).resolve().name
    retriever = None
    if args.index and not args.no_retrieval:
        from sepit.retrieval.evidence import Retriever, trained_settings
        from sepit.retrieval.index import ReferenceIndex

        index = ReferenceIndex(args.index)
        index.check_dataset(args.data, args.split)
        retriever = Retriever.from_settings(index, trained_settings(args.model), k=args.top_k,
                                            vote_weight=args.vote_weight)
    out = predict_items(sepit.model, sepit.processor, items, Path(args.out), name, args.batch_size,
                        GenerationSettings(max_new_tokens=args.max_new_tokens), score=not args.no_score,
                        retriever=retriever)
    print(f"{len(items)} predictions: {out}")
    return 0
