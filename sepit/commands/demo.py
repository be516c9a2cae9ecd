"""``sepit demo``: the main job, end to end on real data (see sepit/demo.py)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("demo", help="build data, train 3 stages, evaluate and answer, on real data",
                       description="The whole system on one CPU: dataset with a homology-aware split, stages 0-2 "
                                   "with the demo preset (SmolLM2-135M-Instruct + a small ESM-2), predictions and "
                                   "report against baselines, three example answers. Rerun to resume.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=None, help="folder of Swiss-Prot/TSV files + structures/ (default: $SEPIT_DATA)")
    p.add_argument("--out", default="runs/demo", help="where everything is written")
    p.add_argument("--quick", action="store_true", help="smaller subsets: a few minutes instead of ~25")
    p.add_argument("--seed", type=int, default=0, help="seed of splits, sampling and training")
    p.add_argument("--split", choices=("homology", "random"), default="homology",
                   help="test proteins below 30%% identity to training (homology) or a random split, where close "
                   "neighbours make copying strong")
    p.set_defaults(func=run)


def run(args) -> int:
    from sepit.demo import run_demo

    run_demo(args.data, args.out, args.quick, args.seed, args.split)
    return 0
