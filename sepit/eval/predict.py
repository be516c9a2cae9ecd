"""``sepit predict``: batched answers over a split of a built dataset, written as predictions JSONL
(docs/ARCHITECTURE.md). Resumable: rows go to ``<out>.partial`` batch by batch; a rerun skips the ids already
there; the file is renamed to ``<out>`` when every item is done.

With a retriever (``sepit predict --index``) each item is answered from its top hits in the reference index (never
its own accession) and its row gains ``evidence`` (the hits shown), ``citations`` and ``unsupported_citations``."""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from sepit.data.store import DatasetStore, rows_where
from sepit.eval.generate import GenerationSettings, answer_items


def _done_ids(partial: Path) -> set[str]:
    """Ids of complete lines in ``partial``; a torn last line (a killed run) is cut off."""
    if not partial.exists():
        return set()
    good, ids = [], set()
    for line in partial.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break
        good.append(line)
        ids.add(row["id"])
    partial.write_text("".join(x + "\n" for x in good))
    return ids


def dataset_items(store: DatasetStore, split: str, max_items: int | None = None, tasks: list[str] | None = None,
                  max_residues: int | None = None, structure: bool = True) -> list[dict]:
    """Items with their protein; ``structure=False`` answers from the sequence alone."""
    rows = store.instructions(split)
    if tasks:
        rows = rows_where(rows, "task", tasks)
    if max_items is not None:
        rows = rows.select(range(min(max_items, len(rows))))
    items = []
    for row in rows:
        p = store.protein(row["accession"])
        n = max_residues or len(p.sequence)
        has = structure and p.coords is not None
        items.append({**row, "sequence": p.sequence[:n], "coords": p.coords[:n] if has else None,
                      "plddt": p.plddt[:n] if has and p.plddt is not None else None})
    return items


def _record(item: dict, prediction: str, probs: dict | None, name: str) -> dict:
    row = {"id": item["id"], "accession": item["accession"], "task": item["task"], "category": item["category"],
           "question": item["question"], "answer": item["answer"], "prediction": prediction,
           "choices": list(item.get("choices") or []), "option_probs": probs, "model": name}
    if item.get("evidence") is not None:
        from sepit.retrieval.evidence import check_citations

        cited = check_citations(prediction, item["evidence"])
        row.update(evidence=[e.to_dict() for e in item["evidence"]], citations=cited.supported,
                   unsupported_citations=cited.unsupported, label=item.get("label") or "")
    return row


def add_evidence(items: list[dict], retriever) -> list[dict]:
    """Items with ``evidence`` and the prompt ``context`` from the retriever (a protein never finds itself)."""
    from sepit.retrieval.evidence import prompt_fields

    evidence = retriever.evidence(items, exclude_self=True)
    return [{**it, "evidence": ev, **prompt_fields(ev)} for it, ev in zip(items, evidence, strict=True)]


def predict_items(model, processor, items: list[dict], out: Path, name: str, batch_size: int = 8,
                  settings: GenerationSettings | None = None, score: bool = True, retriever=None) -> Path:
    """Answer ``items`` and write ``out``; resumes from ``out.partial``. ``retriever``: evidence-grounded
    answers (:class:`sepit.retrieval.evidence.Retriever`): closed-set options are scored with the same context and
    answered from those scores mixed with the evidence's vote (:mod:`sepit.retrieval.vote`; ``model_option_probs``
    and ``evidence_option_probs`` keep both parts), not by generation."""
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _done_ids(partial)
    todo = [it for it in items if it["id"] not in done]
    with open(partial, "a") as fh, tqdm(total=len(items), initial=len(items) - len(todo), desc="predict") as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            if retriever is not None:
                chunk = add_evidence(chunk, retriever)
            for item, answer in zip(chunk, answer_items(model, processor, chunk, settings, batch_size, score,
                                                        retriever), strict=True):
                row = _record(item, answer.pop("text"), answer.pop("option_probs"), name)
                fh.write(json.dumps({**row, **answer}) + "\n")
            fh.flush()
            bar.update(len(chunk))
    partial.replace(out)
    return out
