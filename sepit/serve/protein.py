"""Uploaded protein + question -> a model item (``sequence``, ``coords``, ``plddt``, ``question``, ``choices``).

Structure content is written to a temporary file with the suffix of its ``format`` and read by
:func:`sepit.api.protein_input` (the same code path as ``sepit ask``); the file is removed afterwards. Gzipped
content is decompressed here, in chunks, and refused as soon as it passes ``max_structure_unzipped_bytes`` (a
566 KB gzip bomb never grows past the limit). Every failure raises a :class:`sepit.errors.SepitError` that
names the bad field; a request over a server limit raises :class:`sepit.errors.LimitError` naming the limit.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
import threading
import zlib
from pathlib import Path

from sepit.errors import LimitError, SepitError, SequenceError, StructureError
from sepit.model.esm_tokenizer import RESIDUES
from sepit.prompts import format_question
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


def gunzip_capped(data: bytes, limit: int, chunk: int = 2**16) -> bytes:
    """Decompress gzip ``data`` (several members too) ``chunk`` bytes at a time; refuse it once past ``limit``."""
    out, rest = bytearray(), data
    try:
        while rest:
            inflater = zlib.decompressobj(wbits=31)
            while not inflater.eof:
                piece = inflater.decompress(rest, chunk)
                rest = inflater.unconsumed_tail
                out += piece
                if len(out) > limit:
                    raise LimitError(f"structure: decompressed content exceeds the server limit of {limit} "
                                     "bytes (--max-structure-unzipped-mb)")
                if not piece and not rest:
                    raise StructureError("structure.content: truncated gzip data")
            rest = inflater.unused_data
    except zlib.error as err:
        raise StructureError(f"structure.content: corrupt gzip data ({err})") from None
    return bytes(out)


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
    fmt = field.structure.format
    if fmt.endswith(".gz") or data[:2] == b"\x1f\x8b":
        data, fmt = gunzip_capped(data, settings.max_structure_unzipped_bytes), fmt.removesuffix(".gz")
    name = f"uploaded{_suffix(fmt)}"
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
    long = next(((i, len(c)) for i, c in enumerate(options) if len(c) > settings.max_choice_chars), None)
    if long is not None:
        raise LimitError(f"choices[{long[0]}]: {long[1]} characters exceed the server limit of "
                         f"{settings.max_choice_chars} per option (--max-choice-chars)")
    if any(not c for c in options) or len(set(options)) != len(options):
        raise SepitError("choices: options must be non-empty and distinct")
    return {**load_protein(field, settings), "question": question, "choices": options}


def crop(item: dict, max_residues: int) -> dict:
    """The item cut to its first ``max_residues`` residues (with coordinates); ``item["protein"]`` tells the
    response what happened: ``{"residues": L, "cropped": bool, "cropped_to": N or None}``."""
    n = len(item["sequence"])
    info = {"residues": n, "cropped": n > max_residues, "cropped_to": max_residues if n > max_residues else None}
    if n <= max_residues:
        return {**item, "protein": info}
    cut = {k: (v[:max_residues] if v is not None else None) for k, v in item.items() if k in ("coords", "plddt")}
    return {**item, **cut, "sequence": item["sequence"][:max_residues], "protein": info}


def check_prompt(item: dict, processor, settings: ServeSettings) -> dict:
    """Count the LLM tokens of the longest sequence the model will see for ``item`` (protein positions, question,
    options, and for closed-set items the longest option as answer); over ``max_prompt_tokens`` is refused."""
    longest = max(item["choices"], key=len) if item["choices"] else None
    question = format_question(item["question"], item["choices"], item.get("context"))
    batch = processor([item["sequence"]], questions=[question],
                      answers=[longest] if longest is not None else None)
    n = int(batch["input_ids"].shape[1])
    for turn in item.get("history", []):  # earlier chat turns: their text plus a few tokens of chat template
        n += len(processor.tokenizer(turn["content"], add_special_tokens=False).input_ids) + 5
    if n > settings.max_prompt_tokens:
        raise LimitError(f"prompt: {n} tokens (protein, conversation, question and options) exceed the server limit of "
                         f"{settings.max_prompt_tokens} (--max-prompt-tokens)")
    option_tokens = 0  # the cached option pass scores len(choices) rows of the longest option's tokens
    if longest is not None:
        option_tokens = len(item["choices"]) * (len(processor.tokenizer(longest, add_special_tokens=False).input_ids)
                                                + 2)  # + end of turn
    return {**item, "prompt_tokens": n, "scoring_tokens": max(n, option_tokens)}
