"""The predictions file contract (docs/ARCHITECTURE.md): one JSON object per line, read and written here.

Fields: ``id``, ``accession``, ``task`` (caption | open | closed), ``category``, ``question``, ``answer``
(reference), ``prediction`` (generated continuation only), ``choices`` (list), ``option_probs`` (dict option
-> probability, or null), ``model`` (row name in reports), optional ``identity`` (nearest-neighbour hit).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sepit.errors import InputFormatError
from sepit.io_utils import atomic_file, open_text
from sepit.prompts import strip_citations

TASKS = ("caption", "open", "closed")
OPEN_TASKS = ("caption", "open")
REQUIRED = ("id", "accession", "task", "category", "question", "answer", "prediction", "model")


@dataclass(frozen=True)
class Prediction:
    id: str
    accession: str
    task: str
    category: str
    question: str
    answer: str
    prediction: str
    model: str
    choices: tuple[str, ...] = ()
    option_probs: dict[str, float] | None = None
    identity: float | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def text(self) -> str:
        """The prediction as metrics score it: citations (``[UniProt:ACC]``) removed."""
        return strip_citations(self.prediction)

    @property
    def is_open(self) -> bool:
        return self.task in OPEN_TASKS

    def to_json(self) -> dict:
        row = asdict(self)
        row["choices"] = list(self.choices)
        extra = row.pop("extra")
        if self.identity is None and "identity" not in extra:
            row.pop("identity")
        extra.pop("identity", None)
        return {**row, **extra}


def _parse_line(obj: object, where: str) -> Prediction:
    if not isinstance(obj, dict):
        raise InputFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise InputFormatError(f"{where}: missing field(s) {', '.join(missing)}")
    if obj["task"] not in TASKS:
        raise InputFormatError(f"{where}: task {obj['task']!r} is not one of {', '.join(TASKS)}")
    for key in ("answer", "prediction", "model", "category"):
        if not isinstance(obj[key], str):
            raise InputFormatError(f"{where}: field {key!r} must be a string, got {obj[key]!r}")
    choices = obj.get("choices") or []
    probs = obj.get("option_probs")
    if obj["task"] == "closed" and obj["answer"] not in choices:
        raise InputFormatError(
            f"{where}: closed-set answer {obj['answer']!r} is not one of choices {choices}"
        )
    if probs is not None and (not isinstance(probs, dict) or set(probs) - set(choices)):
        raise InputFormatError(f"{where}: option_probs keys must be among choices {choices}, got {probs!r}")
    known = set(REQUIRED) | {"choices", "option_probs", "identity"}
    extra = {k: v for k, v in obj.items() if k not in known}
    if "identity" in obj:
        extra["identity"] = obj["identity"]  # remembers that the field was present (even when null)
    return Prediction(
        id=str(obj["id"]),
        accession=str(obj["accession"]),
        task=obj["task"],
        category=obj["category"],
        question=str(obj["question"]),
        answer=obj["answer"],
        prediction=obj["prediction"],
        model=obj["model"],
        choices=tuple(choices),
        option_probs=None if probs is None else {k: float(v) for k, v in probs.items()},
        identity=None if obj.get("identity") is None else float(obj["identity"]),
        extra=extra,
    )


def read_predictions(paths: Iterable[str | Path]) -> list[Prediction]:
    """Read one or more predictions files; errors name the file and line. ``(model, id)`` must be unique."""
    paths = list(paths)
    rows: list[Prediction] = []
    seen: dict[tuple[str, str], str] = {}
    for path in paths:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise InputFormatError(f"{where}: not valid JSON ({err.msg})") from None
                row = _parse_line(obj, where)
                key = (row.model, row.id)
                if key in seen:
                    raise InputFormatError(
                        f"{where}: duplicate id {row.id!r} for model {row.model!r} (first at {seen[key]})"
                    )
                seen[key] = where
                rows.append(row)
    if not rows:
        raise InputFormatError(f"no predictions in {', '.join(map(str, paths))}")
    return rows


def write_predictions(rows: Iterable[Prediction], path: str | Path) -> Path:
    """Write predictions JSONL atomically."""
    with atomic_file(path) as fh:
        for row in rows:
            fh.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
    return Path(path)
