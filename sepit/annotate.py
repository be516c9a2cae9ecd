"""Many proteins x several questions in one run (``sepit ask --fasta F QUESTION... --out answers.jsonl``).

Pairs (protein, question) are answered in batches of similar protein length; each finished row is appended to
``OUT.partial`` (one JSON object per line, flushed), and ``OUT`` appears (renamed) only when every pair is done.
A rerun resumes: rows already in ``OUT.partial`` or ``OUT`` are kept and their pairs skipped, so adding a
question later answers only the new pairs.

Row: ``id`` (FASTA id), ``accession``, ``question``, ``choices``, ``answer`` (generated text), ``choice`` and
``probabilities`` (closed-set questions), ``structure`` (the file used, aligned chain, identity; {} when none)
and ``error`` (only when the pair could not be answered, e.g. a protein over the model's length limit).
An ``evidence`` field joins once retrieval lands.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sepit.data.fasta import Protein
from sepit.errors import SepitError
from sepit.io_utils import atomic_file


@dataclass(frozen=True)
class Question:
    text: str
    choices: tuple[str, ...] = ()

    def key(self) -> tuple[str, tuple[str, ...]]:
        return self.text, self.choices


def questions_from(texts: list[str], choices: list[str] | None) -> list[Question]:
    """Questions with their ``--choices`` ('a|b', given once per question in order, '' = open question)."""
    texts = [t.strip() for t in texts]
    if any(not t for t in texts):
        raise SepitError("a question is empty")
    if len(set(texts)) != len(texts):
        raise SepitError("the same question is given twice")
    choices = choices or []
    if choices and len(choices) != len(texts):
        raise SepitError(f"give --choices once per question ({len(texts)} questions, {len(choices)} --choices; "
                         "use --choices '' for an open question)")
    out = []
    for i, text in enumerate(texts):
        options = tuple(c.strip() for c in choices[i].split("|") if c.strip()) if choices else ()
        if choices and choices[i].strip() and (len(options) < 2 or len(set(options)) != len(options)):
            raise SepitError(f"--choices {choices[i]!r}: give at least two distinct options separated by '|'")
        out.append(Question(text, options))
    return out


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def read_done(path: Path) -> list[dict]:
    """Complete rows of an earlier run (a torn last line from a crash is dropped)."""
    if not path.is_file():
        return []
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict) or "id" not in row or "question" not in row:
            raise SepitError(f"{path}:{lineno}: not a sepit answers row; refusing to resume into it")
        rows.append(row)
    return rows


def _key(protein_id: str, question: str, choices: Iterable[str]) -> tuple:
    return protein_id, question, tuple(choices)


def pending_pairs(proteins: list[Protein], questions: list[Question], done: set[tuple]) -> list[tuple]:
    """(protein, question) pairs not yet answered, shortest proteins first (batches of similar length)."""
    pairs = [(p, q) for p in proteins for q in questions if _key(p.id, q.text, q.choices) not in done]
    return sorted(pairs, key=lambda pq: len(pq[0].sequence))


def _request(protein: Protein, question: Question) -> dict:
    return {"sequence": protein.sequence, "structure": protein.structure_path, "chain": protein.chain,
            "question": question.text, "choices": list(question.choices) or None}


def _row(protein: Protein, question: Question, answer=None, error: str | None = None) -> dict:
    row = {"id": protein.id, "accession": protein.accession, "question": question.text,
           "choices": list(question.choices)}
    if answer is not None:
        row.update(answer=answer.text, choice=answer.choice, probabilities=answer.probabilities,
                   structure=answer.structure)
        if answer.evidence is not None:  # with a reference index: the hits shown and the checked citations
            grounded = answer.to_dict()
            row.update({k: grounded[k] for k in ("evidence", "citations", "unsupported_citations",
                                                 "evidence_note") if k in grounded})
    else:
        row.update(answer=None, choice=None, probabilities=None, structure={}, error=error)
    return row


def answer_chunk(sepit, chunk: list[tuple], batch_size: int, generation: dict) -> list[dict]:
    """Rows of one batch; when the batch fails on bad input, pairs are retried alone and failures recorded."""
    try:
        answers = sepit.ask_many([_request(p, q) for p, q in chunk], batch_size=batch_size, **generation)
        return [_row(p, q, a) for (p, q), a in zip(chunk, answers, strict=True)]
    except SepitError:
        if len(chunk) == 1:
            raise
    rows = []
    for p, q in chunk:
        try:
            rows.append(_row(p, q, sepit.ask_many([_request(p, q)], batch_size=1, **generation)[0]))
        except SepitError as err:
            rows.append(_row(p, q, error=str(err)))
    return rows


def annotate(sepit, proteins: list[Protein], questions: list[Question], out: str | Path, batch_size: int = 8,
             overwrite: bool = False, progress: bool = True, **generation) -> dict:
    """Answer every (protein, question) pair into ``out`` (JSONL); returns counts and the rate."""
    import tqdm

    out = Path(out)
    part = partial_path(out)
    if overwrite:
        out.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
    earlier = read_done(out) + read_done(part)
    wanted = {_key(p.id, q.text, q.choices) for p in proteins for q in questions}
    kept = {_key(r["id"], r["question"], r.get("choices") or ()): r for r in earlier}
    todo = pending_pairs(proteins, questions, set(kept))
    out.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm.tqdm(total=len(wanted), initial=len(wanted) - len(todo), desc="ask", unit="answer",
                    disable=not progress)
    start, errors = time.perf_counter(), 0
    with atomic_file(part) as fh:  # earlier rows first (a crash here leaves the old partial file intact)
        fh.writelines(json.dumps(row) + "\n" for row in kept.values())
    with open(part, "a") as fh:
        for i in range(0, len(todo), batch_size):
            for row in answer_chunk(sepit, todo[i:i + batch_size], batch_size, generation):
                errors += "error" in row
                fh.write(json.dumps(row) + "\n")
            fh.flush()
            bar.update(len(todo[i:i + batch_size]))
    bar.close()
    seconds = time.perf_counter() - start
    part.replace(out)
    proteins_done = len({p.id for p, _ in todo})
    return {"rows": len(kept) + len(todo), "answered": len(todo), "resumed": len(kept), "errors": errors,
            "seconds": seconds, "proteins": proteins_done,
            "proteins_per_minute": proteins_done / seconds * 60 if todo and seconds > 0 else None}
