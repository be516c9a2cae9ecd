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


def _ci(value, interval) -> str:
    if value is None:
        return "-"
    if not interval:
        return _fmt(value)
    return f"{_fmt(value)} [{_fmt(interval[0])}, {_fmt(interval[1])}]"


def headline_table(models: dict) -> list[str]:
    """Headline numbers with 95% intervals (Wilson for accuracies, bootstrap for mean item scores)."""
    rows = []
    for name, m in models.items():
        c, o = m.get("closed", {}), m.get("open", {})
        rows.append([name, f"{_ci(c.get('accuracy'), c.get('accuracy_ci95'))} (n={c.get('n', 0)})",
                     f"{_ci(c.get('accuracy_likelihood'), c.get('accuracy_likelihood_ci95'))}"
                     f" (n={c.get('n_scored', 0)})",
                     f"{_ci(o.get('rougeL'), o.get('rougeL_ci95'))} (n={o.get('n', 0)})",
                     _ci(o.get("bertscore_f1"), o.get("bertscore_f1_ci95"))])
    header = ["Model", "Closed acc. [95% CI]", "Acc. likelihood [95% CI]", "ROUGE-L [95% CI]",
              "BERTScore-F1 [95% CI]"]
    return ["", "## Headline numbers with 95% intervals", "",
            "Accuracy intervals: Wilson; ROUGE-L and BERTScore: bootstrap over items (percentile, seeded).",
            ""] + _table(header, rows)


ASPECTS = ("MF", "BP", "CC")


def ontology_tables(models: dict) -> list[str]:
    """GO Fmax/Smin per aspect, Entity-F1, EC match per level."""
    onto = {n: m["ontology"] for n, m in models.items() if m.get("ontology")}
    if not onto:
        return []
    lines = ["", "## Ontology-level scores (GO, CAFA protein-centric)", "",
             "Free text mapped to GO terms by names and synonyms, propagated to ancestors (is_a, part_of), roots "
             "excluded. Fmax [bootstrap 95% CI over proteins]; Smin in bits (information accretion from training "
             "annotations; lower is better); cov. = coverage at Fmax; n = proteins; unmapped = predictions "
             "(references) of GO items naming no GO term of the aspect, counted (they predict nothing).", ""]
    rows = []
    for name, o in onto.items():
        cells = [name]
        for a in ASPECTS:
            g = o.get("go", {}).get(a)
            if not g or not g.get("n"):
                cells.append("-")
                continue
            smin = f", Smin {g['smin']:.2f}" if g.get("smin") is not None else ""
            cells.append(f"{_ci(g['fmax'], g.get('fmax_ci95'))} (n={g['n']}, cov. {_fmt(g['coverage'])}{smin}, "
                         f"unmapped {g['unmapped_predictions']}/{g['unmapped_references']})")
        rows.append(cells)
    lines += _table(["Model"] + [f"{a} Fmax" for a in ASPECTS], rows)
    kinds = sorted({k for o in onto.values() for k in o.get("entity_f1", {})})
    if kinds:
        rows = [[name] + [_entity_cell(o.get("entity_f1", {}).get(k)) for k in kinds] for name, o in onto.items()]
        lines += ["", "### Entity-F1 (micro, items whose reference names an entity of the type)", ""]
        lines += _table(["Model"] + [f"{k} F1 (P/R, n, no entity)" for k in kinds], rows)
    levels = {n: o["ec_levels"] for n, o in onto.items() if o.get("ec_levels")}
    if levels:
        rows = [[n] + [f"{_fmt(lv[str(k)]['accuracy'])} (n={lv[str(k)]['n']})" for k in range(1, 5)]
                for n, lv in levels.items()]
        lines += ["", "### EC exact match per level (first predicted EC number)", ""]
        lines += _table(["Model"] + [f"level {k}" for k in range(1, 5)], rows)
    return lines


def _entity_cell(e: dict | None) -> str:
    if not e:
        return "-"
    return f"{_fmt(e['f1'])} ({_fmt(e['precision'])}/{_fmt(e['recall'])}, n={e['n']}, {e['no_entity']})"


BIN_COLUMNS = [("closed", "accuracy", "Closed acc."), ("open", "rougeL", "ROUGE-L"),
               ("open", "bertscore_f1", "BERTScore-F1")]


def bin_table(models: dict) -> list[str]:
    from sepit.eval.identity_bins import BIN_LABELS

    binned = {n: m["bins"] for n, m in models.items() if "bins" in m}
    if not binned:
        return []
    rows = []
    for name, bins in binned.items():
        for label in (*BIN_LABELS, "unknown"):
            b = bins.get(label)
            if not b:
                continue
            cells = [name, label, str(b["n_proteins"]), str(b["n_closed"]), str(b["n_open"])]
            cells += [_fmt(b.get(section, {}).get(key)) for section, key, _ in BIN_COLUMNS]
            go = b.get("ontology", {}).get("go", {})
            cells += [_fmt(go[a]["fmax"]) if go.get(a, {}).get("n") else "-" for a in ASPECTS]
            rows.append(cells)
    header = ["Model", "Identity to train", "proteins", "n closed", "n open"]
    header += [label for *_, label in BIN_COLUMNS] + [f"{a} Fmax" for a in ASPECTS]
    return ["", "## Per identity bin (highest identity of the test protein to the training set)", "",
            "Bins with no test protein are left out; \"unknown\": proteins without a stored identity."
            ] + [""] + _table(header, rows)


LOSS_CHECKS = [
    ("closed accuracy", lambda m: m.get("closed", {}).get("accuracy")),
    ("closed accuracy (likelihood)", lambda m: m.get("closed", {}).get("accuracy_likelihood")),
    ("ROUGE-L", lambda m: m.get("open", {}).get("rougeL")),
    ("BERTScore-F1", lambda m: m.get("open", {}).get("bertscore_f1")),
] + [(f"GO {a} Fmax", lambda m, a=a: m.get("ontology", {}).get("go", {}).get(a, {}).get("fmax"))
     for a in ASPECTS] + [
    (f"{k} Entity-F1", lambda m, k=k: (m.get("ontology", {}).get("entity_f1", {}).get(k) or {}).get("f1"))
    for k in ("go", "ec", "location")]


def losses(models: dict, prefix: str = "sepit") -> list[str]:
    """Plain statements of every headline metric on which a baseline scores at least as high as sepit."""
    ours = [n for n in models if n.startswith(prefix)]
    out = []
    for name in ours:
        for metric, get in LOSS_CHECKS:
            mine = get(models[name])
            if mine is None:
                continue
            better = [(o, get(models[o])) for o in models if o not in ours and get(models[o]) is not None]
            better = [(o, v) for o, v in better if v >= mine]
            if better:
                others = ", ".join(f"{o} {_fmt(v)}" for o, v in better)
                out.append(f"{name} loses on {metric}: {_fmt(mine)} vs {others}")
    return out


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
    lines += headline_table(models)
    lost = losses(models)
    if lost:
        lines += ["", "## Where sepit loses (a baseline scores at least as high)", ""] + [f"- {x}" for x in lost]
    lines += ontology_tables(models)
    lines += bin_table(models)
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
