"""``SepitProcessor``: (protein sequence, optional structure, chat messages) -> model inputs (DESIGN 2.4).

Outputs follow docs/ARCHITECTURE.md ("Model inputs"): ``input_ids``/``attention_mask`` [B, T],
``labels`` [B, T] (only when answers are given: assistant tokens incl. the end-of-turn token, else -100),
``protein_input_ids``/``protein_attention_mask`` [B, Lp], ``coords`` [B, Lp, 3], ``coord_mask`` [B, Lp],
``plddt`` [B, Lp]. The prompt is the LLM tokenizer's own chat template; the user turn's ``<protein>`` is
expanded to ``<protein_start> <protein> x N <protein_end>``, N = ceil(residues / pool_stride).
Saved beside the model: the LLM tokenizer at the folder root, the ESM tokenizer in ``protein_tokenizer/``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from transformers import AddedToken, AutoTokenizer, BatchFeature, EsmTokenizer

from sepit.errors import SequenceError, StructureError
from sepit.model.configuration import PROTEIN_END_TOKEN, PROTEIN_START_TOKEN, PROTEIN_TOKEN
from sepit.model.esm_tokenizer import RESIDUES, esm_tokenizer
from sepit.model.projector import num_positions

PROCESSOR_FILE = "processor_config.json"
PROTEIN_TOKENIZER_DIR = "protein_tokenizer"
IGNORE_INDEX = -100


def add_protein_tokens(tokenizer) -> dict[str, int]:
    """Add ``<protein>``, ``<protein_start>``, ``<protein_end>`` as special tokens; returns their ids."""
    tokens = [PROTEIN_TOKEN, PROTEIN_START_TOKEN, PROTEIN_END_TOKEN]
    missing = [t for t in tokens if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in missing], special_tokens=True)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    return dict(zip(("protein_token_id", "protein_start_token_id", "protein_end_token_id"), ids, strict=True))


class SepitProcessor:
    """Batch builder. ``on_too_long``: "error" raises ``SequenceError``, "truncate" warns and cuts."""

    def __init__(self, tokenizer, protein_tokenizer: EsmTokenizer | None = None, pool_stride: int = 1,
                 max_residues: int = 1022, on_too_long: Literal["error", "truncate"] = "error",
                 padding_side: Literal["right", "left"] = "right", system_prompt: str | None = None):
        if on_too_long not in ("error", "truncate") or padding_side not in ("right", "left"):
            raise ValueError(f"on_too_long={on_too_long!r} / padding_side={padding_side!r} not supported")
        if pool_stride < 1 or max_residues < 1:
            raise ValueError(f"pool_stride ({pool_stride}) and max_residues ({max_residues}) must be >= 1")
        self.tokenizer = tokenizer
        self.protein_tokenizer = protein_tokenizer if protein_tokenizer is not None else esm_tokenizer()
        self.pool_stride, self.max_residues, self.on_too_long = pool_stride, max_residues, on_too_long
        self.padding_side, self.system_prompt = padding_side, system_prompt
        self.token_ids = add_protein_tokens(tokenizer)

    # --- the call ---
    def __call__(self, sequences: str | list[str], messages: list[dict] | list[list[dict]] | None = None, *,
                 questions: str | list[str] | None = None, answers: str | list[str] | None = None,
                 coords: list[np.ndarray | None] | np.ndarray | None = None,
                 plddt: list[np.ndarray | None] | np.ndarray | None = None,
                 padding_side: Literal["right", "left"] | None = None) -> BatchFeature:
        """One protein per sample plus either ``messages`` (a chat per sample; a final assistant turn gives
        labels) or ``questions`` (and optional ``answers``). Returns a ``BatchFeature`` of torch tensors."""
        single = isinstance(sequences, str)
        sequences = [sequences] if single else list(sequences)
        chats = self._chats(len(sequences), single, messages, questions, answers)
        protein, n_positions = self._proteins(sequences, coords, plddt, single)
        rows = [self._tokenize_chat(self._expand(chat, n)) for chat, n in zip(chats, n_positions, strict=True)]
        text = self._pad(rows, padding_side or self.padding_side, with_labels=chats[0][-1]["role"] == "assistant")
        return BatchFeature({**text, **protein}, tensor_type="pt")

    def _proteins(self, sequences: list[str], coords, plddt, single: bool) -> tuple[dict, list[int]]:
        """Protein inputs of the batch and each protein's number of LLM positions."""
        protein = encode_proteins(sequences, self.protein_tokenizer, self.max_residues, self.on_too_long,
                                  _per_sample(coords, len(sequences), single),
                                  _per_sample(plddt, len(sequences), single))
        return protein, [int(num_positions(n, self.pool_stride)) for n in protein.pop("num_residues")]

    # --- training items tokenised once (DESIGN 2.4; issue 14) ---
    def tokenize_unexpanded(self, question: str, answer: str) -> tuple[list[int], list[int]]:
        """Token ids and labels of one question/answer chat with the protein as a single ``<protein>`` token.

        Computed once per training item; :meth:`from_tokens` expands the placeholder to the protein's N positions
        per batch. Equal to the full path because the placeholder run is special tokens (tested)."""
        (chat,) = self._chats(1, True, None, question, answer)
        return self._tokenize_chat(self._expand(chat, 1))

    def from_tokens(self, sequences: list[str], tokens: list[tuple[list[int], list[int]]],
                    coords: list[np.ndarray | None] | None = None, plddt: list[np.ndarray | None] | None = None,
                    padding_side: Literal["right", "left"] | None = None) -> BatchFeature:
        """The training batch of ``__call__(sequences, questions=..., answers=...)`` from
        :meth:`tokenize_unexpanded` outputs: no chat template, no tokenizer call."""
        if len(tokens) != len(sequences):
            raise ValueError(f"{len(sequences)} sequences but {len(tokens)} token rows")
        protein, n_positions = self._proteins(list(sequences), coords, plddt, False)
        pid = self.token_ids["protein_token_id"]
        rows = [_expand_ids(list(ids), list(labels), pid, n)
                for (ids, labels), n in zip(tokens, n_positions, strict=True)]
        text = self._pad(rows, padding_side or self.padding_side, with_labels=True)
        return BatchFeature({**text, **protein}, tensor_type="pt")

    def _chats(self, n: int, single: bool, messages, questions, answers) -> list[list[dict]]:
        if (messages is None) == (questions is None):
            raise ValueError("pass exactly one of messages= or questions=")
        if messages is not None:
            chats = [messages] if single and messages and isinstance(messages[0], dict) else list(messages)
        else:
            qs = [questions] if isinstance(questions, str) else list(questions)
            ans = [answers] if isinstance(answers, str) else (list(answers) if answers is not None else None)
            chats = [[{"role": "user", "content": q}] + ([{"role": "assistant", "content": a}] if ans else [])
                     for q, a in zip(qs, ans or [None] * len(qs), strict=True)]
        if len(chats) != n:
            raise ValueError(f"{n} sequences but {len(chats)} chats/questions")
        ends = {chat[-1]["role"] == "assistant" for chat in chats}
        if len(ends) > 1:
            raise ValueError("either every chat ends with an assistant answer (training) or none does (generation)")
        return chats

    def _expand(self, chat: list[dict], n_positions: int) -> list[dict]:
        """Insert ``<protein>\\n`` into the first user turn if absent; expand it to N placeholders."""
        chat = [dict(m) for m in chat]
        count = sum(m["content"].count(PROTEIN_TOKEN) for m in chat)
        if count > 1:
            raise ValueError(f"a chat may hold one {PROTEIN_TOKEN} placeholder, found {count}")
        if count == 0:
            user = next((m for m in chat if m["role"] == "user"), None)
            if user is None:
                raise ValueError("a chat needs a user turn to hold the protein")
            user["content"] = f"{PROTEIN_TOKEN}\n{user['content']}"
        run = PROTEIN_START_TOKEN + PROTEIN_TOKEN * n_positions + PROTEIN_END_TOKEN
        for m in chat:
            m["content"] = m["content"].replace(PROTEIN_TOKEN, run)
        if self.system_prompt and chat[0]["role"] != "system":
            chat.insert(0, {"role": "system", "content": self.system_prompt})
        return chat

    def _template(self, chat: list[dict], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=add_generation_prompt)

    def _tokenize_chat(self, chat: list[dict]) -> tuple[list[int], list[int]]:
        """Token ids and labels of one chat: labels = ids on assistant turns (through end-of-turn)."""
        answered = chat[-1]["role"] == "assistant"
        text = self._template(chat, add_generation_prompt=not answered)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        labels = [IGNORE_INDEX] * len(ids)
        for i, message in enumerate(chat):
            if message["role"] == "assistant":
                start, end = self._assistant_span(chat, i, text)
                self._label_span(ids, offsets, labels, start, end)
        return ids, labels

    def _assistant_span(self, chat: list[dict], i: int, text: str) -> tuple[int, int]:
        """Character span of assistant turn ``i`` in ``text`` (the template must render turns as prefixes)."""
        before = self._template(chat[:i], add_generation_prompt=True)
        upto = self._template(chat[: i + 1], add_generation_prompt=False)
        if not (upto.startswith(before) and text.startswith(upto)):
            raise ValueError("the chat template does not render earlier turns as a prefix; cannot place labels")
        return len(before), len(upto)

    def _label_span(self, ids, offsets, labels, start: int, end: int) -> None:
        inside = [k for k, (a, _) in enumerate(offsets) if start <= a < end]
        eot = self.tokenizer.eos_token_id
        last = max((k for k in inside if ids[k] == eot), default=inside[-1] if inside else -1)
        for k in inside:
            if k <= last:
                labels[k] = ids[k]

    def _pad(self, rows: list[tuple[list[int], list[int]]], side: str, with_labels: bool) -> dict:
        pad_id = self.tokenizer.pad_token_id
        pad_id = pad_id if pad_id is not None else self.tokenizer.eos_token_id
        width = max(len(ids) for ids, _ in rows)
        out = {"input_ids": [], "attention_mask": [], "labels": []}
        for ids, labels in rows:
            fill = width - len(ids)
            parts = {"input_ids": (ids, pad_id), "attention_mask": ([1] * len(ids), 0),
                     "labels": (labels, IGNORE_INDEX)}
            for key, (seq, value) in parts.items():
                out[key].append(seq + [value] * fill if side == "right" else [value] * fill + seq)
        if not with_labels:
            del out["labels"]
        return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}

    # --- decoding ---
    def decode_continuation(self, generated_ids: torch.Tensor, input_ids: torch.Tensor) -> list[str]:
        """Text of the new tokens only (never the prompt): ``generate`` output [B, T + new] minus T."""
        return self.tokenizer.batch_decode(generated_ids[:, input_ids.shape[1]:], skip_special_tokens=True)

    # --- persistence ---
    def to_dict(self) -> dict:
        return {"processor_class": type(self).__name__, "pool_stride": self.pool_stride,
                "max_residues": self.max_residues, "on_too_long": self.on_too_long,
                "padding_side": self.padding_side, "system_prompt": self.system_prompt}

    def save_pretrained(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(folder)
        self.protein_tokenizer.save_pretrained(folder / PROTEIN_TOKENIZER_DIR)
        (folder / PROCESSOR_FILE).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, **overrides) -> SepitProcessor:
        import sepit.model.auto  # noqa: F401  (the folder's config.json may be a SEPIT model's)

        folder = Path(folder)
        settings = json.loads((folder / PROCESSOR_FILE).read_text())
        settings.pop("processor_class", None)
        settings.update(overrides)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        protein_tokenizer = EsmTokenizer.from_pretrained(folder / PROTEIN_TOKENIZER_DIR)
        return cls(tokenizer, protein_tokenizer, **settings)


def _per_sample(values, n: int, single: bool) -> list:
    """None, one array (single sample) or a list of arrays/None -> list of length n."""
    if values is None:
        return [None] * n
    if single and isinstance(values, np.ndarray):
        return [values]
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{n} sequences but {len(values)} structure entries")
    return values


# --- protein side ---
def clean_sequence(sequence: str, index: int, max_residues: int, on_too_long: str) -> str:
    """Upper-cased, whitespace-free, validated residues (``SequenceError`` names sample and position)."""
    if not isinstance(sequence, str):
        raise SequenceError(f"protein {index}: sequence must be a string, got {type(sequence).__name__}")
    seq = "".join(sequence.split()).upper()
    if not seq:
        raise SequenceError(f"protein {index}: empty sequence")
    bad = next(((pos, aa) for pos, aa in enumerate(seq, 1) if aa not in RESIDUES), None)
    if bad is not None:
        raise SequenceError(f"protein {index}: invalid residue {bad[1]!r} at position {bad[0]} "
                            f"(allowed: {''.join(sorted(RESIDUES))})")
    if len(seq) > max_residues:
        if on_too_long == "error":
            raise SequenceError(f"protein {index}: {len(seq)} residues exceed max_residues={max_residues}")
        warnings.warn(f"protein {index}: {len(seq)} residues truncated to max_residues={max_residues}",
                      stacklevel=3)
        seq = seq[:max_residues]
    return seq


def _check_structure(coords, plddt, length: int, full_length: int, index: int):
    """-> (coords [L, 3] float32 or None, plddt [L] float32 or None), truncated to ``length``."""
    if coords is not None:
        coords = np.asarray(coords, dtype=np.float32)
        if coords.size == 0:
            coords = None
        elif coords.ndim != 2 or coords.shape[1] != 3:
            raise StructureError(f"protein {index}: coords must have shape [L, 3], got {list(coords.shape)}")
        elif coords.shape[0] != full_length:
            raise StructureError(f"protein {index}: structure has {coords.shape[0]} points but the sequence "
                                 f"has {full_length} residues")
    if plddt is not None:
        plddt = np.asarray(plddt, dtype=np.float32).reshape(-1)
        if plddt.size == 0:
            plddt = None
        elif plddt.shape[0] != full_length:
            raise StructureError(f"protein {index}: plddt has {plddt.shape[0]} values but the sequence "
                                 f"has {full_length} residues")
    return (coords[:length] if coords is not None else None), (plddt[:length] if plddt is not None else None)


def encode_proteins(sequences: list[str], protein_tokenizer, max_residues: int, on_too_long: str,
                    coords: list, plddt: list) -> dict:
    """Protein-side tensors (ARCHITECTURE.md): ``<cls> residues <eos> <pad>...``, right-padded, plus
    ``num_residues`` (list). Coordinate rows with NaN/inf are missing points (coord_mask False)."""
    seqs = [clean_sequence(s, i, max_residues, on_too_long) for i, s in enumerate(sequences)]
    full_lengths = [len("".join(s.split())) for s in sequences]
    B, Lp = len(seqs), max(len(s) for s in seqs) + 2
    tok = protein_tokenizer
    ids_BL = torch.full((B, Lp), tok.pad_token_id, dtype=torch.long)
    mask_BL = torch.zeros(B, Lp, dtype=torch.long)
    coords_BL3 = torch.zeros(B, Lp, 3, dtype=torch.float32)
    coord_mask_BL = torch.zeros(B, Lp, dtype=torch.bool)
    plddt_BL = torch.zeros(B, Lp, dtype=torch.float32)
    for b, seq in enumerate(seqs):
        n = len(seq)
        ids_BL[b, : n + 2] = torch.tensor([tok.cls_token_id, *tok.convert_tokens_to_ids(list(seq)), tok.eos_token_id])
        mask_BL[b, : n + 2] = 1
        xyz, conf = _check_structure(coords[b], plddt[b], n, full_lengths[b], b)
        if xyz is not None:
            finite_L = torch.from_numpy(np.isfinite(xyz).all(axis=1))
            coords_BL3[b, 1 : n + 1] = torch.from_numpy(np.nan_to_num(xyz, nan=0.0, posinf=0.0, neginf=0.0))
            coord_mask_BL[b, 1 : n + 1] = finite_L
        if conf is not None:
            plddt_BL[b, 1 : n + 1] = torch.from_numpy(np.nan_to_num(conf, nan=0.0))
    return {"protein_input_ids": ids_BL, "protein_attention_mask": mask_BL, "coords": coords_BL3,
            "coord_mask": coord_mask_BL, "plddt": plddt_BL, "num_residues": [len(s) for s in seqs]}


def _expand_ids(ids: list[int], labels: list[int], protein_id: int, n: int) -> tuple[list[int], list[int]]:
    """The one ``protein_id`` of ``ids`` repeated ``n`` times (its labels ignored)."""
    if ids.count(protein_id) != 1:
        raise ValueError(f"pre-tokenised item holds {ids.count(protein_id)} protein placeholders, expected 1")
    k = ids.index(protein_id)
    return ids[:k] + [protein_id] * n + ids[k + 1:], labels[:k] + [IGNORE_INDEX] * n + labels[k + 1:]
