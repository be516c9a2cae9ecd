"""Uploaded protein + question -> a model item (``sequence``, ``coords``, ``plddt``, ``question``, ``choices``).

Structure content is written to a temporary file with the suffix of its ``format`` and read by
:func:`sepit.api.protein_input` (the same code path as ``sepit ask``); the file is removed afterwards.
Every failure raises a :class:`sepit.errors.SepitError` that names the bad field.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
import threading
from pathlib import Path

from sepit.errors import SepitError, SequenceError, StructureError
from sepit.model.esm_tokenizer import RESIDUES
from sepit.serve.schemas import ProteinField, StructureUpload
from sepit.serve.settings import ServeSettings

_PARSE_LOCK = threading.Lock()  # structure alignment shares one cached aligner; parse one upload at a time


def clean_sequence(text: str, limit: int) -> str:
    """Residues of a pasted sequence: FASTA header lines and whitespace removed, upper-cased, checked."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(">")]
    seq = "".join("".join(lines).split()).upper()
    if not seq:
        raise SequenceError("sequence: empty (give residues in one-letter code, or a structure file)")
    bad = next(((pos, aa) for pos, aa in enumerate(seq, 1) if aa not in RESIDUES), None)
    if bad is not None:
        raise SequenceError(f"sequence: invalid residue {bad[1]!r} at position {bad[0]} "
                            f"(allowed: {''.join(sorted(RESIDUES))})")
    if len(seq) > limit:
        raise SequenceError(f"sequence: {len(seq)} residues exceed the server limit of {limit}")
    return seq


def structure_bytes(upload: StructureUpload, limit: int) -> bytes:
    if upload.encoding == "base64":
        try:
            data = base64.b64decode(upload.content, validate=True)
        except (binascii.Error, ValueError) as err:
            raise StructureError(f"structure.content: not valid base64 ({err})") from None
    else:
        if upload.format.endswith(".gz"):
            raise StructureError(f"structure: format {upload.format!r} needs encoding 'base64'")
        data = upload.content.encode()
    if len(data) > limit:
        raise StructureError(f"structure: {len(data)} bytes exceed the server limit of {limit} bytes")
    return data


def _suffix(fmt: str) -> str:
    return "." + fmt.replace("mmcif", "cif")


def load_protein(field: ProteinField, settings: ServeSettings) -> dict:
    """``{"sequence", "coords"?, "plddt"?, "structure": info}``; temporary files never outlive the call."""
    from sepit.api import protein_input

    sequence = clean_sequence(field.sequence, settings.max_sequence_length) if field.sequence else None
    if field.structure is None:
        if field.chain:
            raise SepitError("chain: given without a structure")
        if sequence is None:
            raise SepitError("protein: give a sequence and/or a structure file")
        return protein_input(sequence)
    data = structure_bytes(field.structure, settings.max_structure_bytes)
    name = f"uploaded{_suffix(field.structure.format)}"
    with tempfile.TemporaryDirectory(prefix="sepit-serve-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            with _PARSE_LOCK:
                result = protein_input(sequence, path, field.chain)
        except SepitError as err:
            raise type(err)(str(err).replace(str(path), f"structure ({name})")) from None
    if len(result["sequence"]) > settings.max_sequence_length:
        raise SequenceError(f"structure: chain of {len(result['sequence'])} residues exceeds the server limit "
                            f"of {settings.max_sequence_length}")
    clean_sequence(result["sequence"], settings.max_sequence_length)
    result["structure"] = {**result["structure"], "file": name}
    return result


def model_item(field: ProteinField | None, question: str, choices: list[str] | None,
               settings: ServeSettings) -> dict:
    """Validated protein, question and options, ready for the engine."""
    question = question.strip()
    if not question:
        raise SepitError("question: empty (the last user message must hold the question)")
    if len(question) > settings.max_question_chars:
        raise SepitError(f"question: {len(question)} characters exceed the limit of {settings.max_question_chars}")
    if field is None:
        raise SepitError("protein: missing (add a 'protein' object with a sequence and/or structure)")
    options = [c.strip() for c in choices or []]
    if choices is not None and (len(options) < 2 or len(options) > settings.max_choices):
        raise SepitError(f"choices: give between 2 and {settings.max_choices} options, got {len(options)}")
    if any(not c for c in options) or len(set(options)) != len(options):
        raise SepitError("choices: options must be non-empty and distinct")
    return {**load_protein(field, settings), "question": question, "choices": options}
