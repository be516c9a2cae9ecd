"""The ablation table (paper Table 2, at demo scale) on the demo's homology-aware test split.

Variants, each trained with the demo preset on the same dataset and scored on the same test items:
  full           stages 0-1-2 (the demo's own run, reused when present)
  no_structure   stages 0-1-2 with every structure dropped in training and at test time
  no_moe         stage 2 kept dense (from the full run's stage-1 model)
  no_stage0      stage 1 from a randomly initialised encoder (no warm-up), then stage 2
  no_retrieval   stages 1-2 trained and answered without retrieved evidence (from the full run's stage 0)
next to the nearest-neighbour transfer, the LLM alone and the full model answering without its index ("w/o
retrieval", from the demo's predictions). Variants trained with retrieval answer with the demo's index.

    python scripts/ablation.py --data ../shared/data --out runs/demo [--quick]

Writes <out>/ablation/{predictions,report}/ and docs/results/ablation.md (table + timings + command).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sepit.demo import DemoPlan, build_data, build_reference, demo_config, eval_ids, find_data, train_all
from sepit.train.run import train_stage

VARIANTS = {
    "no_structure": ["stage0.structure_dropout=1.0", "stage1.structure_dropout=1.0", "stage2.structure_dropout=1.0"],
    "no_moe": ["moe.num_experts=0", "moe.top_k=0"],
    "no_stage0": [],
    "no_retrieval": ["retrieval.enabled=false"],
}


def train_variant(plan: DemoPlan, name: str, full_cfg) -> Path:
    cfg = demo_config(plan, [f"output_dir={plan.out / 'ablation' / name}", *VARIANTS[name]])
    if (cfg.model_dir(2) / "config.json").is_file():
        return cfg.model_dir(2)
    if name == "no_structure":
        return train_all(plan, cfg)
    if name == "no_moe":
        return train_stage(cfg, 2, init_from=str(full_cfg.model_dir(1)), overwrite=True)
    if name == "no_retrieval":
        train_stage(cfg, 1, init_from=str(full_cfg.model_dir(0)), overwrite=True)
        return train_stage(cfg, 2, overwrite=True)
    train_stage(cfg, 1, init_from="none", overwrite=True)
    return train_stage(cfg, 2, overwrite=True)


def predict_variant(plan: DemoPlan, name: str, model_dir: Path, ids: set[str]) -> Path:
    from sepit.api import Sepit
    from sepit.data.store import DatasetStore
    from sepit.demo import demo_retriever
    from sepit.eval.generate import GenerationSettings
    from sepit.eval.predict import dataset_items, predict_items

    out = plan.out / "ablation" / "predictions" / f"{name}.jsonl"
    demo_preds = plan.out / "predictions" / "sepit.jsonl"
    if name == "full" and not out.is_file() and demo_preds.is_file():  # the demo already answered these items
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = [json.loads(x) for x in demo_preds.read_text().splitlines()]
        out.write_text("".join(json.dumps({**r, "model": "sepit full"}) + "\n" for r in rows if r["id"] in ids))
    if not out.is_file():
        sepit = Sepit.from_pretrained(model_dir)
        items = [it for it in dataset_items(DatasetStore(plan.dataset), "test", structure=name != "no_structure",
                                            max_residues=sepit.processor.max_residues) if it["id"] in ids]
        predict_items(sepit.model, sepit.processor, items, out, f"sepit {name}", batch_size=8,
                      settings=GenerationSettings(max_new_tokens=plan.max_new_tokens),
                      retriever=demo_retriever(plan, model_dir))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="raw data folder (default: $SEPIT_DATA)")
    ap.add_argument("--out", default="runs/demo", help="the demo's output folder (its run is the 'full' row)")
    ap.add_argument("--quick", action="store_true", help="the demo's --quick sizes")
    ap.add_argument("--doc", default="docs/results/ablation.md", help="where the table is committed")
    args = ap.parse_args()
    plan = DemoPlan(find_data(args.data), Path(args.out), quick=args.quick)
    timings: dict[str, float] = {}
    start = time.time()
    build_data(plan)
    build_reference(plan)
    full_cfg = demo_config(plan)
    models = {"full": train_all(plan, full_cfg)}
    timings["full (stages 0-2, 0 if reused from the demo)"] = round(time.time() - start, 1)
    for name in VARIANTS:
        t = time.time()
        models[name] = train_variant(plan, name, full_cfg)
        timings[name] = round(time.time() - t, 1)
    ids = set(eval_ids(plan))
    files = [predict_variant(plan, name, folder, ids) for name, folder in models.items()]
    files += [plan.out / "predictions" / f for f in ("sepit_no_retrieval.jsonl", "nearest_neighbour.jsonl",
                                                     "llm_only.jsonl") if (plan.out / "predictions" / f).is_file()]
    write_table(plan, files, timings, args)


def write_table(plan: DemoPlan, files: list[Path], timings: dict, args) -> None:
    from sepit.eval.metrics import Scorers, evaluate
    from sepit.eval.records import read_predictions
    from sepit.eval.report import write_report

    results = evaluate(read_predictions(files), Scorers())
    report = write_report(results, plan.out / "ablation" / "report", overwrite=True)
    cols = [("BLEU-2", "bleu2"), ("BLEU-4", "bleu4"), ("ROUGE-L", "rougeL"), ("METEOR", "meteor"),
            ("BERTScore F1", "bertscore_f1")]
    lines = ["# Ablation at demo scale (paper Table 2 analogue)", "",
             f"Command: `python scripts/ablation.py --out {args.out}{' --quick' if args.quick else ''}` "
             f"(data: ../shared/data). Same homology-aware test items for every row.", "",
             "| model | " + " | ".join(c for c, _ in cols) + " | closed-set accuracy | open items | closed items |",
             "|---|" + "---|" * (len(cols) + 3)]
    for name, m in results["models"].items():
        o, c = m.get("open", {}), m.get("closed", {})
        vals = [f"{100 * o[k]:.2f}" if isinstance(o.get(k), float) else "-" for _, k in cols]
        acc = f"{100 * c['accuracy']:.1f}" if isinstance(c.get("accuracy"), float) else "-"
        lines.append(f"| {name} | " + " | ".join(vals) + f" | {acc} | {o.get('n', '-')} | {c.get('n', '-')} |")
    lines += ["", "Wall-clock training time per variant (seconds): " + json.dumps(timings), "",
              f"Full report with per-category tables and plots: `{report}/report.md` (not committed; rerun the "
              "command). Scores are percentages."]
    Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
    Path(args.doc).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
