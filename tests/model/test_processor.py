"""SepitProcessor: chat template, placeholder expansion, labels, protein tensors, errors (DESIGN 2.4)."""

import math

import numpy as np
import pytest
import torch
from tiny_sepit import ANSWERS, QUESTIONS, SEQS, random_coords, smol_tokenizer

from sepit.errors import SequenceError, StructureError
from sepit.model.processor import SepitProcessor


@pytest.fixture(scope="module")
def proc():
    return SepitProcessor(smol_tokenizer())


def test_outputs_follow_the_contract(proc):
    batch = proc(SEQS[:2], questions=QUESTIONS[:2], answers=ANSWERS[:2], coords=[random_coords(10), None])
    B, T = batch["input_ids"].shape
    Lp = len(SEQS[0]) + 2
    assert batch["attention_mask"].shape == batch["labels"].shape == (B, T) == (2, T)
    assert batch["protein_input_ids"].shape == batch["protein_attention_mask"].shape == (2, Lp)
    assert batch["coords"].shape == (2, Lp, 3) and batch["coords"].dtype == torch.float32
    assert batch["coord_mask"].dtype == torch.bool and batch["plddt"].shape == (2, Lp)
    tok = proc.protein_tokenizer
    ids = batch["protein_input_ids"][1].tolist()
    assert ids[0] == tok.cls_token_id and ids[4] == tok.eos_token_id and set(ids[5:]) == {tok.pad_token_id}
    assert tok.convert_ids_to_tokens(ids[1:4]) == list("MKV")
    assert batch["protein_attention_mask"][1].tolist() == [1] * 5 + [0] * (Lp - 5)
    assert batch["coord_mask"][0].tolist() == [False] + [True] * 10 + [False]
    assert not batch["coord_mask"][1].any()  # no structure


def test_placeholders_expand_once_per_residue(proc):
    batch = proc(SEQS, questions=QUESTIONS)
    ids = proc.token_ids
    for b, seq in enumerate(SEQS):
        row = batch["input_ids"][b]
        assert int((row == ids["protein_token_id"]).sum()) == len(seq)
        assert int((row == ids["protein_start_token_id"]).sum()) == 1
        assert int((row == ids["protein_end_token_id"]).sum()) == 1
        start = int((row == ids["protein_start_token_id"]).nonzero())
        run = row[start + 1 : start + 1 + len(seq)]
        assert (run == ids["protein_token_id"]).all() and row[start + 1 + len(seq)] == ids["protein_end_token_id"]


def test_placeholder_count_follows_stride():
    proc = SepitProcessor(smol_tokenizer(), pool_stride=4)
    batch = proc(SEQS, questions=QUESTIONS)
    counts = (batch["input_ids"] == proc.token_ids["protein_token_id"]).sum(1).tolist()
    assert counts == [math.ceil(len(s) / 4) for s in SEQS]


def test_user_placeholder_is_kept_where_written(proc):
    batch = proc("MKV", messages=[{"role": "user", "content": "Look: <protein> what is it?"}])
    text = proc.tokenizer.decode(batch["input_ids"][0])
    assert "Look: <protein_start><protein><protein><protein><protein_end> what is it?" in text
    auto = proc.tokenizer.decode(proc("MKV", questions="What?")["input_ids"][0])
    assert "<protein_end>\nWhat?" in auto


def test_labels_are_assistant_tokens_only(proc):
    batch = proc(SEQS[:2], questions=QUESTIONS[:2], answers=ANSWERS[:2])
    tok = proc.tokenizer
    for b in range(2):
        labels, ids = batch["labels"][b], batch["input_ids"][b]
        pos = (labels != -100).nonzero().flatten()
        assert torch.equal(labels[pos], ids[pos])
        assert (pos.diff() == 1).all()  # one contiguous run
        assert tok.decode(ids[pos]) == ANSWERS[b] + tok.eos_token  # answer + end of turn, nothing else
        prompt_ids = proc(SEQS[b], questions=QUESTIONS[b])["input_ids"][0]
        assert int(pos[0]) == len(prompt_ids)  # labels start right after the generation prompt
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()


def test_multi_turn_labels_every_assistant_turn(proc):
    chat = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
            {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]
    batch = proc("MKV", messages=chat)
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    eos = proc.tokenizer.eos_token
    assert proc.tokenizer.decode(ids[labels != -100]) == f"A1{eos}A2{eos}"


def test_generation_prompt_and_padding_sides(proc):
    right = proc(SEQS[:2], questions=QUESTIONS[:2])
    left = proc(SEQS[:2], questions=QUESTIONS[:2], padding_side="left")
    assert "labels" not in right
    assert right["attention_mask"][1, -1] == 0 and left["attention_mask"][1, 0] == 0
    assert left["attention_mask"][:, -1].all()
    text = proc.tokenizer.decode(left["input_ids"][0])
    assert text.endswith("<|im_start|>assistant\n")


def test_nan_rows_are_missing_points_and_plddt_aligned(proc):
    xyz = random_coords(3)
    xyz[1] = np.nan
    batch = proc("MKV", questions="Q", coords=xyz, plddt=np.array([90.0, 50.0, 70.0]))
    assert batch["coord_mask"][0].tolist() == [False, True, False, True, False]
    assert batch["plddt"][0].tolist() == [0.0, 90.0, 50.0, 70.0, 0.0]
    assert torch.isfinite(batch["coords"]).all()


@pytest.mark.parametrize("seq, match", [("MKZ1V", "invalid residue '1' at position 4"), ("", "empty"),
                                        ("MK*V", "position 3")])
def test_sequence_errors(proc, seq, match):
    with pytest.raises(SequenceError, match=match):
        proc(["MKV", seq], questions=["Q", "Q"])


def test_too_long_raises_or_truncates():
    strict = SepitProcessor(smol_tokenizer(), max_residues=5)
    with pytest.raises(SequenceError, match="max_residues=5"):
        strict("MKTAYIAK", questions="Q")
    lenient = SepitProcessor(smol_tokenizer(), max_residues=5, on_too_long="truncate")
    with pytest.warns(UserWarning, match="truncated"):
        batch = lenient("MKTAYIAK", questions="Q", coords=random_coords(8))
    assert batch["protein_input_ids"].shape == (1, 7)
    assert int((batch["input_ids"] == lenient.token_ids["protein_token_id"]).sum()) == 5


def test_structure_errors(proc):
    with pytest.raises(StructureError, match="4 points but the sequence has 3 residues"):
        proc("MKV", questions="Q", coords=random_coords(4))
    with pytest.raises(StructureError, match=r"shape \[L, 3\]"):
        proc("MKV", questions="Q", coords=np.zeros((3, 2)))
    with pytest.raises(StructureError, match="plddt has 2 values"):
        proc("MKV", questions="Q", plddt=np.ones(2))


def test_input_count_errors(proc):
    with pytest.raises(ValueError, match="2 sequences but 1"):
        proc(["MKV", "MKV"], questions=["Q"])
    with pytest.raises(ValueError, match="exactly one of"):
        proc("MKV")


def test_save_and_load_round_trip(tmp_path):
    proc = SepitProcessor(smol_tokenizer(), pool_stride=2, max_residues=50, padding_side="left")
    proc.save_pretrained(tmp_path)
    again = SepitProcessor.from_pretrained(tmp_path)
    assert again.to_dict() == proc.to_dict() and again.token_ids == proc.token_ids
    a = proc(SEQS, questions=QUESTIONS, answers=ANSWERS)
    b = again(SEQS, questions=QUESTIONS, answers=ANSWERS)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
