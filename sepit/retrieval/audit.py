"""Audit of evidence-grounded predictions (rows of ``sepit predict --index``): how many answers had evidence,
cited it, cited something outside it (flagged, never a source), and whether "yes" answers about a label rest on
an entry carrying that label."""

from __future__ import annotations

from collections.abc import Sequence

from sepit.eval.closed_set import parse_choice


def _yes(row) -> bool:
    if not row.text.strip() and row.option_probs:
        return max(row.option_probs, key=row.option_probs.get) == "yes"
    return parse_choice(row.text, row.choices) == "yes"


def audit(rows: Sequence) -> dict:
    """``rows``: :class:`sepit.eval.records.Prediction` of one model; counts over those with ``evidence``."""
    grounded = [r for r in rows if isinstance(r.extra.get("evidence"), list)]
    out = {"items": len(rows), "with_retrieval": len(grounded),
           "no_hits": sum(not r.extra["evidence"] for r in grounded),
           "citing": sum(bool(r.extra.get("citations")) for r in grounded),
           "unsupported_citations": sum(len(r.extra.get("unsupported_citations") or []) for r in grounded)}
    yes = [r for r in grounded if r.task == "closed" and _label(r) and _yes(r)]
    cited_yes = [r for r in yes if r.extra.get("citations")]
    out["yes_about_label"] = len(yes)
    out["yes_cited_entry_has_label"] = _share([_carries(r, r.extra["citations"]) for r in cited_yes])
    out["yes_top_hit_has_label"] = _share([_carries(r, [r.extra["evidence"][0]["accession"]])
                                           for r in yes if r.extra["evidence"]])
    out.update(_closed_parts([r for r in grounded if r.task == "closed" and r.extra.get("model_option_probs")]))
    return out


def _closed_parts(rows: list) -> dict:
    """Closed-set answers with retrieval, by part (sepit.retrieval.vote): the model's option probabilities alone
    (evidence in its prompt), the evidence vote alone (items where a hit voted) and their mixture (the answer)."""
    def right(probs: dict | None, row) -> bool:
        return bool(probs) and max(probs, key=probs.get) == row.answer

    voted = [r for r in rows if r.extra.get("evidence_option_probs")]
    return {"closed_voted": len(rows), "closed_with_vote": len(voted),
            "closed_model_acc": _share([right(r.extra["model_option_probs"], r) for r in rows]),
            "closed_vote_acc": _share([right(r.extra["evidence_option_probs"], r) for r in voted]),
            "closed_mixed_acc": _share([right(r.option_probs, r) for r in rows])}


def _label(row) -> str:
    return str(row.extra.get("label") or "")


def _carries(row, accessions: list[str]) -> bool:
    label = _label(row).lower()
    by_acc = {e["accession"]: {x.lower() for x in e.get("labels", [])} for e in row.extra["evidence"]}
    return any(label in by_acc.get(a, set()) for a in accessions)


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def audit_markdown(results: dict[str, dict]) -> str:
    """A table, one row per model, of :func:`audit` results."""
    lines = ["", "## Evidence audit (retrieval)", "",
             "| model | items | with retrieval | no hits | citing | citations outside the evidence | yes about a label "
             "| cited entry has the label | top hit has the label |", "|---|---|---|---|---|---|---|---|---|"]
    for name, a in results.items():
        pct = [("-" if a[k] is None else f"{100 * a[k]:.0f}%") for k in ("yes_cited_entry_has_label",
                                                                            "yes_top_hit_has_label")]
        lines.append(f"| {name} | {a['items']} | {a['with_retrieval']} | {a['no_hits']} | {a['citing']} | "
                     f"{a['unsupported_citations']} | {a['yes_about_label']} | {pct[0]} | {pct[1]} |")
    parts = {n: a for n, a in results.items() if a.get("closed_voted")}
    if parts:
        lines += ["", "Closed-set answers with retrieval mix the model's option probabilities (evidence in its prompt) "
                  "with the evidence's identity-weighted label vote (`retrieval.vote_weight`); accuracy of each part:",
                  "", "| model | closed items | model alone | items with a vote | vote alone | mixture (the answer) |",
                  "|---|---|---|---|---|---|"]
        for name, a in parts.items():
            acc = [("-" if a[k] is None else f"{100 * a[k]:.1f}%") for k in ("closed_model_acc", "closed_vote_acc",
                                                                              "closed_mixed_acc")]
            lines.append(f"| {name} | {a['closed_voted']} | {acc[0]} | {a['closed_with_vote']} | {acc[1]} | "
                         f"{acc[2]} |")
    return "\n".join(lines) + "\n"
