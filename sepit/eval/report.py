"""The evaluation report: ``report.md`` (one table with models and baselines as rows, per-category tables),
``metrics.json`` and PNG plots (metric per category, reliability diagram), written atomically into one folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from sepit.io_utils import atomic_dir

OPEN_COLUMNS = [
    ("bleu1", "BLEU-1"),
    ("bleu2", "BLEU-2"),
    ("bleu3", "BLEU-3"),
    ("bleu4", "BLEU-4"),
    ("rouge1", "ROUGE-1"),
    ("rouge2", "ROUGE-2"),
    ("rougeL", "ROUGE-L"),
    ("meteor", "METEOR"),
    ("bertscore_f1", "BERTScore-F1"),
]
PAPER_COLUMNS = [(f"paper_bleu{n}", f"BLEU-{n} (WordPiece)") for n in range(1, 5)]
CLOSED_COLUMNS = [
    ("accuracy", "Accuracy"),
    ("unparsed", "Unparsed"),
    ("accuracy_likelihood", "Acc. (likelihood)"),
    ("ece", "ECE"),
]
PLOT_METRICS = [
    ("bleu2", "BLEU-2"),
    ("rougeL", "ROUGE-L"),
    ("meteor", "METEOR"),
    ("bertscore_f1", "BERTScore-F1"),
]


def _fmt(value, key: str = "") -> str:
    if value is None:
        return "-"
    if key in ("n", "unparsed") or isinstance(value, int):
        return str(value)
    return f"{100 * value:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _present(dicts: list[dict], columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, label) for k, label in columns if any(d.get(k) is not None for d in dicts)]


def main_table(models: dict) -> list[str]:
    opens = [m.get("open", {}) for m in models.values()]
    closeds = [m.get("closed", {}) for m in models.values()]
    ocols = _present(opens, OPEN_COLUMNS + PAPER_COLUMNS)
    ccols = _present(closeds, CLOSED_COLUMNS)
    header = (
        ["Model", "n open"] + [label for _, label in ocols] + ["n closed"] + [label for _, label in ccols]
    )
    header.append("Mean identity")
    rows = []
    for name, m in models.items():
        o, c = m.get("open", {}), m.get("closed", {})
        ident = (m.get("identity") or {}).get("mean_identity")
        rows.append(
            [name, str(m["n_open"])]
            + [_fmt(o.get(k), k) for k, _ in ocols]
            + [str(m["n_closed"])]
            + [_fmt(c.get(k), k) for k, _ in ccols]
            + [_fmt(ident)]
        )
    return _table(header, rows)


def open_category_tables(models: dict) -> list[str]:
    cats = sorted({c for m in models.values() for c in m.get("open_per_category", {})})
    lines: list[str] = []
    for cat in cats:
        per = {
            name: m["open_per_category"][cat]
            for name, m in models.items()
            if cat in m.get("open_per_category", {})
        }
        cols = _present(list(per.values()), OPEN_COLUMNS + PAPER_COLUMNS)
        rows = [[name, str(s["n"])] + [_fmt(s.get(k), k) for k, _ in cols] for name, s in per.items()]
        lines += ["", f"### {cat}", ""] + _table(["Model", "n"] + [label for _, label in cols], rows)
    return lines


def closed_category_table(models: dict) -> list[str]:
    names = [n for n, m in models.items() if "closed_per_category" in m]
    cats = sorted({c for n in names for c in models[n]["closed_per_category"]})
    if not cats:
        return []
    rows = []
    for cat in cats:
        cells = []
        for n in names:
            s = models[n]["closed_per_category"].get(cat)
            cells.append(
                "-" if s is None else f"{_fmt(s['accuracy'])} (n={s['n']}, unparsed {s['unparsed']})"
            )
        rows.append([cat] + cells)
    return ["", "## Closed-set accuracy per category", ""] + _table(["Category"] + names, rows)


def render_markdown(results: dict, plots: list[str]) -> str:
    models = results["models"]
    settings = results.get("settings", {})
    lines = [
        "# sepit evaluation report",
        "",
        "Scores x100. BLEU-n: corpus BLEU (sacrebleu, cumulative n-gram weights); ROUGE: F1 with stemming; "
        "METEOR: NLTK with WordNet 3.0; BERTScore: "
        f"{settings.get('bertscore_model')} layer {settings.get('bertscore_layers')}, no rescaling; "
        "BLEU-n (WordPiece): per-item BLEU on that model's WordPiece tokens, averaged (paper-compatible). "
        "Open-ended = tasks caption and open; closed-set accuracy parses the generated answer "
        "(unparseable = wrong); ECE from option likelihoods.",
        "",
        "## Overall",
        "",
    ]
    lines += main_table(models)
    lines += ["", "## Open-ended metrics per category"] + open_category_tables(models)
    lines += closed_category_table(models)
    if results.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_report(results: dict, out: str | Path, overwrite: bool = False) -> Path:
    """Write ``report.md``, ``metrics.json`` and the plots into ``out`` (atomically)."""
    from sepit.eval.plots import write_plots

    with atomic_dir(out, overwrite=overwrite) as tmp:
        plots = write_plots(results, tmp)
        (tmp / "metrics.json").write_text(json.dumps(_finite(results), indent=2, allow_nan=False))
        (tmp / "report.md").write_text(render_markdown(results, plots))
    return Path(out)


def _finite(value):
    """NaN/inf -> None, so that metrics.json is strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
