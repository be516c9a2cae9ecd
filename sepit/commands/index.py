"""``sepit index build|search``: the reference index of annotated proteins used for evidence-grounded answers."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("index", help="build or query the reference index (retrieval of annotated homologs)",
                       description="A searchable index of the annotated proteins of one split of a built dataset.")
    kinds = p.add_subparsers(dest="action", metavar="<action>", required=True)
    b = kinds.add_parser("build", help="index one split of a built dataset",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    b.add_argument("--data", required=True, help="built dataset folder (sepit data build --out)")
    b.add_argument("--split", default="train", help="split(s) to index, comma-separated (train, valid, test)")
    b.add_argument("--out", required=True, help="index folder to write (atomically)")
    b.add_argument("--method", default="auto", choices=["auto", "mmseqs", "opal"],
                   help="search backend (auto: MMseqs2 database when mmseqs is installed)")
    b.add_argument("--mmseqs-index", action="store_true",
                   help="also precompute the MMseqs2 k-mer index (about 0.9 GB; faster queries on large references)")
    b.add_argument("--allow-test", action="store_true", help="allow indexing the test split (leaks test labels)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing index folder")
    b.set_defaults(func=run_build)
    s = kinds.add_parser("search", help="top hits of one protein sequence in an index",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--index", required=True, help="index folder (sepit index build)")
    s.add_argument("--sequence", required=True, help="protein sequence (one-letter codes)")
    s.add_argument("--k", type=int, default=3, help="hits to keep")
    s.add_argument("--method", default="auto", choices=["auto", "mmseqs", "opal"], help="search backend")
    s.add_argument("--threads", type=int, default=1, help="search threads")
    s.set_defaults(func=run_search)


def run_build(args) -> int:
    import time
    from pathlib import Path

    from sepit.errors import SepitError
    from sepit.retrieval.index import ReferenceIndex, build_index

    if Path(args.out).exists() and not args.overwrite:
        raise SepitError(f"index folder already exists: {args.out} (pass --overwrite to replace it)")
    start = time.time()
    out = build_index(args.data, args.out, args.split, args.allow_test, args.method, args.overwrite,
                      args.mmseqs_index)
    index = ReferenceIndex(out)
    print(f"indexed {len(index)} proteins of split {','.join(index.splits)} in {time.time() - start:.1f} s"
          f" ({'MMseqs2 database + ' if index.meta['mmseqs'] else ''}pyopal): {out}")
    return 0


def run_search(args) -> int:
    import json

    from sepit.retrieval.index import ReferenceIndex

    index = ReferenceIndex(args.index, args.method, args.threads)
    hits = index.search({"query": args.sequence}, args.k, exclude_self=False)["query"]
    print(json.dumps([h.to_dict() for h in hits], indent=2))
    return 0
