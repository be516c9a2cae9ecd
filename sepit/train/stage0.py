"""Stage 0 (DESIGN 2.3): warm up the structure-aware encoder with contrastive protein-text, masked-token and
coordinate-denoising losses; new modules at ``lr``, the ESM-2 backbone at ``lr * encoder_lr_scale``."""

from __future__ import annotations

from pathlib import Path

from sepit.data.store import DatasetStore
from sepit.model.esm_tokenizer import esm_tokenizer
from sepit.model.processor import encode_proteins
from sepit.model.warmup import SepitWarmupModel
from sepit.train.config import TrainConfig
from sepit.train.data import ProteinCropper, protein_items
from sepit.train.optim import param_groups
from sepit.train.parts import encoder_from_spec, require_model_folder


class WarmupCollator:
    """Rows (accession, text) -> encoder inputs + text-encoder inputs (proteins cropped and structure-dropped as
    in :class:`sepit.train.collate.InstructionCollator`, crops counted in ``crop_counter``)."""

    def __init__(self, store: DatasetStore, model: SepitWarmupModel, max_residues: int, text_max_length: int,
                 structure_dropout: float = 0.0, crop_window: str = "start"):
        self.model, self.tokenizer = model, esm_tokenizer()
        self.max_residues, self.text_max_length = max_residues, text_max_length
        self.proteins = ProteinCropper(store, max_residues, structure_dropout, crop_window)
        self.crop_counter = self.proteins.counter

    def __call__(self, rows: list[dict]) -> dict:
        sequences, coords, plddt = self.proteins(rows)
        enc = encode_proteins(sequences, self.tokenizer, self.max_residues, "truncate", coords, plddt)
        return {"input_ids": enc["protein_input_ids"], "attention_mask": enc["protein_attention_mask"],
                "coords": enc["coords"], "coord_mask": enc["coord_mask"], "plddt": enc["plddt"],
                **self.model.tokenize_text([r["text"] for r in rows], self.text_max_length)}


def stage0_plan(cfg: TrainConfig, init_from: str | None = None):
    """``init_from``: an earlier stage-0 model folder to continue warming up (default: a fresh encoder)."""
    from sepit.train.stages import StagePlan

    spec = cfg.stage(0)
    if init_from:
        model = SepitWarmupModel.from_pretrained(require_model_folder(Path(init_from), "stage-0 model"))
    else:
        encoder = encoder_from_spec(cfg.encoder, spec.data.max_residues)
        model = SepitWarmupModel.build(encoder, text_model=spec.text_encoder)
    store = DatasetStore(cfg.dataset_dir(0))
    rows = protein_items(store, spec.data, cfg.seed)
    collator = WarmupCollator(store, model, spec.data.max_residues, spec.text_max_length, spec.structure_dropout,
                              spec.data.crop_window)
    o = spec.optim
    scaled = {"encoder": (model.encoder.esm, o.encoder_lr_scale)}
    if o.structure_lr_scale != 1.0:  # the structure module at its own lr (docs/results/denoise.md)
        scaled["structure"] = (model.encoder.structure, o.structure_lr_scale)
    groups = param_groups(model, scaled, o.lr, o.weight_decay)

    def save_final(folder: Path) -> None:
        model.save_pretrained(folder)

    return StagePlan(model, rows, collator, groups, None, save_final, collator.proteins)
