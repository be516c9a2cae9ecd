"""``sepit baseline nn|llm|naive``: predictions files for the baselines, scored later by ``sepit eval``."""

from __future__ import annotations

import argparse

from sepit.commands import existing_dir, positive_int
from sepit.resources import SMOLLM2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", required=True, metavar="DIR", type=existing_dir,
        help="built dataset folder (sepit data build --out)"
    )
    p.add_argument("--split", default="test", help="split to answer (default: test)")
    p.add_argument("--out", required=True, metavar="JSONL", help="predictions file to write (atomically)")
    p.add_argument("--limit", type=positive_int, default=None, help="answer only the first N items (quick runs)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "baseline",
        help="write baseline predictions (nearest neighbour, LLM alone)",
        description="Baseline predictions in the predictions-file format, one per kind.",
    )
    kinds = p.add_subparsers(dest="kind", metavar="<kind>", required=True)
    nn = kinds.add_parser("nn", help="nearest-neighbour homology transfer (Smith-Waterman via pyopal)")
    _common(nn)
    nn.add_argument(
        "--train-split", default="train", help="split whose answers are transferred (default: train)"
    )
    nn.add_argument("--name", default="nearest-neighbour", help="model name in the report")
    nn.add_argument("--threads", type=positive_int, default=1, help="alignment threads")
    nn.add_argument("--search", choices=["auto", "opal", "mmseqs"], default="auto",
                    help="opal: exhaustive Smith-Waterman; mmseqs: MMseqs2, top-k streamed (auto: mmseqs from"
                         " 20000 training proteins)")
    nn.add_argument("--top-k", type=positive_int, default=50, help="neighbours kept per test protein")
    nn.add_argument("--index", default=None, help="reference index of the training split (sepit index build); "
                                                  "default: a search of the training proteins (--search)")
    nn.set_defaults(func=run_nn)
    llm = kinds.add_parser("llm", help="the LLM alone, without protein input (text prior)")
    _common(llm)
    llm.add_argument(
        "--model", default=SMOLLM2, help=f"causal LM: offline name ({SMOLLM2}), folder or hub id"
    )
    llm.add_argument("--name", default="llm-only", help="model name in the report")
    llm.add_argument("--batch-size", type=positive_int, default=8, help="generation batch size")
    llm.add_argument("--max-new-tokens", type=positive_int, default=64, help="generated tokens per answer")
    llm.add_argument(
        "--no-option-scores",
        action="store_true",
        help="do not score closed-set options by likelihood (no option_probs, no ECE)",
    )
    llm.add_argument("--device", default=None, help="torch device (default: cpu)")
    llm.add_argument("--index", default=None, help="reference index (sepit index build): the LLM sees the same "
                                                   "retrieved evidence as sepit (retrieval without a protein model)")
    llm.set_defaults(func=run_llm)
    naive = kinds.add_parser("naive", help="the training label distribution alone (most frequent answer per "
                             "category; GO term frequencies as scores)")
    _common(naive)
    naive.add_argument("--train-split", default="train", help="split whose answers are counted (default: train)")
    naive.add_argument("--name", default="naive", help="model name in the report")
    naive.add_argument("--go", default=None, metavar="FILE",
                       help="GO graph for propagated term frequencies (default: $SEPIT_GO or the cached GO.sqlite; "
                       "'none': label names unpropagated)")
    naive.set_defaults(func=run_naive)


def _limit(items: list, limit: int | None) -> list:
    return items if limit is None else items[:limit]


def run_nn(args: argparse.Namespace) -> int:
    from sepit.eval.baselines import load_labels, load_split, nearest_neighbour_predictions
    from sepit.eval.records import write_predictions

    train, train_seqs = load_split(args.data, args.train_split)
    test, test_seqs = load_split(args.data, args.split)
    index = None
    if args.index:
        from sepit.retrieval.index import ReferenceIndex

        index = ReferenceIndex(args.index, threads=args.threads)
        index.check_dataset(args.data, args.split)
    rows = nearest_neighbour_predictions(
        train, train_seqs, _limit(test, args.limit), test_seqs, model=args.name, threads=args.threads,
        train_labels=load_labels(args.data, train_seqs), search=args.search, top_k=args.top_k, index=index,
    )
    write_predictions(rows, args.out)
    print(f"wrote {len(rows)} predictions to {args.out}")
    return 0


def run_llm(args: argparse.Namespace) -> int:
    from sepit.eval.baselines import llm_prior_predictions, load_split
    from sepit.eval.records import write_predictions

    items, sequences = load_split(args.data, args.split)
    retriever = None
    if args.index:
        from sepit.retrieval.evidence import Retriever
        from sepit.retrieval.index import ReferenceIndex

        index = ReferenceIndex(args.index)
        index.check_dataset(args.data, args.split)
        retriever = Retriever(index)
    rows = llm_prior_predictions(
        _limit(items, args.limit),
        model=args.model,
        name=args.name,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        score_options=not args.no_option_scores,
        device=args.device,
        retriever=retriever,
        sequences=sequences,
    )
    write_predictions(rows, args.out)
    print(f"wrote {len(rows)} predictions to {args.out}")
    return 0


def run_naive(args: argparse.Namespace) -> int:
    from sepit.eval.baselines import load_labels, load_split
    from sepit.eval.naive import naive_predictions
    from sepit.eval.records import write_predictions

    train, train_seqs = load_split(args.data, args.train_split)
    test, _ = load_split(args.data, args.split)
    rows = naive_predictions(train, _limit(test, args.limit), model=args.name,
                             train_labels=load_labels(args.data, train_seqs), lexicon=_lexicon(args.go))
    write_predictions(rows, args.out)
    print(f"wrote {len(rows)} predictions to {args.out}")
    return 0


def _lexicon(go: str | None):
    from sepit.resources import default_go_ontology

    path = default_go_ontology(go)
    if not path:
        return None
    from sepit.data.go import GeneOntology
    from sepit.eval.ontology import GoLexicon

    return GoLexicon(GeneOntology.load(path))
