"""Protein embeddings from sepit's structure-aware encoder (``sepit embed``, :meth:`sepit.api.Sepit.embed`).

The embedding of a protein is the encoder's hidden state at ``layer`` (default: the penultimate layer, the one
the LLM sees) over its real residues: ``pooled`` [D] is their mean, ``per_residue`` [L, D] the states
themselves (CLS/EOS/padding never count). Proteins longer than ``max_residues`` (default: the encoder's
position limit) are embedded from their first ``max_residues`` residues; ``length`` keeps the full length.
Batches are grouped by length; padding does not change a protein's embedding. Works with stage-0 folders
(``encoder/`` inside) and stage-1/2 sepit folders.

Output (:func:`embed_to_file`): ``OUT.parquet`` (columns ``accession``, ``length``, ``structure`` (bool: a
structure was used), ``structure_source``, ``embedding`` (list of float32) and, with per-residue output,
``per_residue`` (list of lists)) or ``OUT.npz`` (``accessions`` [N], ``structure`` [N] bool, ``lengths`` [N],
``embeddings`` [N, D] float32 and, with per-residue output, ``residues`` [sum L, D] + ``offsets`` [N + 1]).
Work in progress lives in ``OUT.partial/`` (one Parquet shard per chunk); a rerun skips the proteins found
there, and the final file is written atomically.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from sepit.data.fasta import Protein
from sepit.errors import InputFormatError, SepitError
from sepit.model.encoder import SepitEncoderModel
from sepit.model.processor import encode_proteins
from sepit.model.projector import residue_mask

FORMATS = (".parquet", ".npz")


class ProteinEmbedder:
    """An encoder + its ESM tokenizer; ``embed(proteins)`` yields one row dict per protein, in input order."""

    def __init__(self, encoder: SepitEncoderModel, protein_tokenizer, layer: int = -2,
                 max_residues: int | None = None, device: str | torch.device | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.encoder = encoder.to(self.device).eval()
        self.tokenizer = protein_tokenizer
        n_states = encoder.num_layers + 1
        if not -n_states <= layer < n_states:
            raise SepitError(f"layer {layer} out of range: the encoder has {n_states} hidden states "
                             f"(embeddings + {encoder.num_layers} layers)")
        self.layer = layer
        limit = encoder.config.esm_config.max_position_embeddings - 2
        self.max_residues = min(max_residues or limit, limit)
        tok = protein_tokenizer
        self.special_ids = (tok.cls_token_id, tok.eos_token_id, tok.pad_token_id)

    @classmethod
    def from_folder(cls, folder: str | Path, **kwargs) -> ProteinEmbedder:
        """A stage-0 folder (or its ``encoder/``) or a stage-1/2 sepit model folder."""
        encoder, tokenizer, layer = load_encoder_folder(Path(folder))
        kwargs.setdefault("layer", layer)
        return cls(encoder, tokenizer, **kwargs)

    @torch.inference_mode()
    def embed_batch(self, proteins: Sequence[Protein], per_residue: bool = False) -> list[dict]:
        """One padded forward pass; rows with ``pooled`` [D] (and ``per_residue`` [L, D]) float32 arrays."""
        with warnings.catch_warnings():  # cropping is documented (``length`` keeps the full length)
            warnings.simplefilter("ignore", UserWarning)
            batch = encode_proteins([p.sequence for p in proteins], self.tokenizer, self.max_residues, "truncate",
                                    [p.coords for p in proteins], [p.plddt for p in proteins])
        batch.pop("num_residues")
        inputs = {k: v.to(self.device) for k, v in batch.items()}
        out = self.encoder(input_ids=inputs["protein_input_ids"], attention_mask=inputs["protein_attention_mask"],
                           coords=inputs["coords"], coord_mask=inputs["coord_mask"], plddt=inputs["plddt"],
                           output_hidden_states=True)
        hidden_BLD = out.hidden_states[self.layer].float()
        mask_BL = residue_mask(inputs["protein_input_ids"], inputs["protein_attention_mask"], self.special_ids)
        pooled_BD = (hidden_BLD * mask_BL[..., None]).sum(1) / mask_BL.sum(1, keepdim=True).clamp(min=1)
        used_B = inputs["coord_mask"].any(dim=1)
        rows = []
        for b, protein in enumerate(proteins):
            row = {"accession": protein.id, "length": len(protein.sequence), "structure": bool(used_B[b]),
                   "structure_source": protein.structure_source if bool(used_B[b]) else "",
                   "pooled": pooled_BD[b].cpu().numpy()}
            if per_residue:
                row["per_residue"] = hidden_BLD[b][mask_BL[b]].cpu().numpy()
            rows.append(row)
        return rows

    def embed(self, proteins: Sequence[Protein], batch_size: int = 8, per_residue: bool = False,
              progress: Callable[[int], None] | None = None) -> Iterator[dict]:
        """Rows in input order; batches are built from length-sorted proteins (little padding)."""
        order = sorted(range(len(proteins)), key=lambda i: len(proteins[i].sequence))
        done: dict[int, dict] = {}
        next_out = 0
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            for i, row in zip(chunk, self.embed_batch([proteins[i] for i in chunk], per_residue), strict=True):
                done[i] = row
            if progress is not None:
                progress(len(chunk))
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1


def load_encoder_folder(folder: Path) -> tuple[SepitEncoderModel, object, int]:
    """(encoder, ESM tokenizer, feature layer) of a stage-0 folder, an encoder folder or a sepit folder."""
    from sepit.model.esm_tokenizer import esm_tokenizer

    config = folder / "config.json"
    if not config.is_file():
        raise InputFormatError(f"{folder} is not a model folder (no config.json)")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except json.JSONDecodeError as err:
        raise InputFormatError(f"{config} is not valid JSON: {err}") from None
    if model_type == "sepit":
        return _sepit_encoder(folder)
    if (folder / "encoder" / "config.json").is_file():
        folder = folder / "encoder"
    try:
        encoder = SepitEncoderModel.from_pretrained(folder, use_safetensors=True)
    except (OSError, ValueError, KeyError) as err:
        raise InputFormatError(f"{folder}: neither a sepit model nor a stage-0 encoder folder ({err})") from None
    return encoder, esm_tokenizer(), -2


def _sepit_encoder(folder: Path) -> tuple[SepitEncoderModel, object, int]:
    """The encoder of a stage-1/2 folder (loaded through ``from_pretrained``, which maps legacy weight names)."""
    from sepit.model.build import load_sepit

    model, processor = load_sepit(folder)
    encoder = model.encoder
    layer = model.config.protein_feature_layer
    del model
    return encoder, processor.protein_tokenizer, layer


# --- output ---
def output_format(out: str | Path) -> str:
    suffix = Path(out).suffix.lower()
    if suffix not in FORMATS:
        raise SepitError(f"--out {out}: name the output file .parquet or .npz")
    return suffix


def partial_dir(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def done_ids(out: Path) -> set[str]:
    """Proteins already embedded by an interrupted run (from ``OUT.partial/`` shards)."""
    import pyarrow.parquet as pq

    shards = sorted(partial_dir(out).glob("part-*.parquet"))
    return {a for s in shards for a in pq.read_table(s, columns=["accession"]).column("accession").to_pylist()}


def _table(rows: list[dict]):
    import pyarrow as pa

    data = {"accession": [r["accession"] for r in rows], "length": [r["length"] for r in rows],
            "structure": [r["structure"] for r in rows], "structure_source": [r["structure_source"] for r in rows],
            "embedding": pa.array([r["pooled"] for r in rows], type=pa.list_(pa.float32()))}
    if rows and "per_residue" in rows[0]:
        data["per_residue"] = pa.array([list(r["per_residue"]) for r in rows],
                                       type=pa.list_(pa.list_(pa.float32())))
    return pa.table(data)


def write_shard(out: Path, rows: list[dict]) -> Path:
    """One finished chunk, written atomically into ``OUT.partial/``."""
    import pyarrow.parquet as pq

    folder = partial_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{len(list(folder.glob('part-*.parquet'))):05d}.parquet"
    tmp = folder / f".{path.name}.tmp"
    pq.write_table(_table(rows), tmp)
    tmp.replace(path)
    return path


def finish(out: Path, order: list[str]) -> int:
    """Merge the shards into ``out`` (atomically, rows in ``order``) and remove ``OUT.partial/``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sepit.io_utils import atomic_file

    shards = sorted(partial_dir(out).glob("part-*.parquet"))
    table = pa.concat_tables([pq.read_table(s) for s in shards]) if shards else _table([])
    position = {a: i for i, a in enumerate(table.column("accession").to_pylist())}
    missing = [a for a in order if a not in position]
    if missing:
        raise SepitError(f"{len(missing)} proteins have no embedding (e.g. {missing[:3]})")
    table = table.take(pa.array([position[a] for a in order], type=pa.int64()))
    with atomic_file(out, "wb") as fh:
        if output_format(out) == ".parquet":
            pq.write_table(table, fh)
        else:
            np.savez(fh, **_npz_arrays(table))
    shutil.rmtree(partial_dir(out))
    return table.num_rows


def _npz_arrays(table) -> dict[str, np.ndarray]:
    emb = table.column("embedding").to_pylist()
    arrays = {"accessions": np.array(table.column("accession").to_pylist(), dtype=str),
              "structure": np.array(table.column("structure").to_pylist(), dtype=bool),
              "lengths": np.array(table.column("length").to_pylist(), dtype=np.int64),
              "embeddings": np.asarray(emb, dtype=np.float32).reshape(len(emb), -1)}
    if "per_residue" in table.column_names:
        per = [np.asarray(x, dtype=np.float32) for x in table.column("per_residue").to_pylist()]
        arrays["residues"] = np.concatenate(per) if per else np.zeros((0, arrays["embeddings"].shape[1]), "float32")
        arrays["offsets"] = np.concatenate([[0], np.cumsum([len(x) for x in per])]).astype(np.int64)
    return arrays


def embed_to_file(embedder: ProteinEmbedder, proteins: list[Protein], out: str | Path, batch_size: int = 8,
                  per_residue: bool = False, chunk: int = 256, overwrite: bool = False,
                  progress: bool = True) -> dict:
    """Embed ``proteins`` into ``out`` (.parquet/.npz), resuming from ``OUT.partial/``; returns counts."""
    import tqdm

    out = Path(out)
    output_format(out)
    if out.exists() and not overwrite:
        raise SepitError(f"--out {out} already exists (pass --overwrite to replace it)")
    done = done_ids(out)
    todo = [p for p in proteins if p.id not in done]
    bar = tqdm.tqdm(total=len(proteins), initial=len(proteins) - len(todo), desc="embed", unit="protein",
                    disable=not progress)
    for start in range(0, len(todo), chunk):
        rows = list(embedder.embed(todo[start:start + chunk], batch_size, per_residue, bar.update))
        write_shard(out, rows)
    bar.close()
    n = finish(out, [p.id for p in proteins])
    return {"proteins": n, "resumed": len(done), "with_structure": sum(p.has_structure for p in proteins)}
