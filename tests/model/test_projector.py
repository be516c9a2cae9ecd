"""Projector, residue selection and stride pooling (DESIGN 2.4; original bug #5: no padding to the LLM)."""

import pytest
import torch

from sepit.model.projector import SepitProjector, num_positions, pool_residues, residue_mask

SPECIAL = (0, 2, 1)  # cls, eos, pad


def _batch():
    # protein 0: 7 residues, protein 1: 3 residues (right padded)
    ids = torch.tensor([[0, 4, 5, 6, 7, 8, 9, 10, 2], [0, 4, 5, 6, 2, 1, 1, 1, 1]])
    return ids, (ids != 1).long()


def test_projector_shapes_and_layers():
    proj = SepitProjector(16, 32)
    assert proj(torch.randn(5, 16)).shape == (5, 32)
    assert isinstance(proj.linear_1, torch.nn.Linear) and proj.linear_2.in_features == 32


def test_residue_mask_excludes_cls_eos_padding():
    ids, mask = _batch()
    res = residue_mask(ids, mask, SPECIAL)
    assert res.sum(1).tolist() == [7, 3]
    assert not res[:, 0].any() and not res[0, 8] and not res[1, 4:].any()


def test_stride_one_is_masked_select():
    ids, mask = _batch()
    hidden = torch.randn(2, 9, 4)
    res = residue_mask(ids, mask, SPECIAL)
    out = pool_residues(hidden, res, 1)
    assert out.shape == (10, 4)
    assert torch.equal(out, torch.cat([hidden[0, 1:8], hidden[1, 1:4]]))


def test_stride_pooling_means_per_protein():
    ids, mask = _batch()
    hidden = torch.randn(2, 9, 4)
    res = residue_mask(ids, mask, SPECIAL)
    out = pool_residues(hidden, res, 3)
    expected = torch.stack([hidden[0, 1:4].mean(0), hidden[0, 4:7].mean(0), hidden[0, 7:8].mean(0),
                            hidden[1, 1:4].mean(0)])
    assert out.shape == (4, 4)
    torch.testing.assert_close(out, expected)
    assert num_positions(torch.tensor([7, 3]), 3).tolist() == [3, 1]
    assert num_positions(10, 4) == 3


def test_bad_stride_raises():
    with pytest.raises(ValueError, match="stride"):
        pool_residues(torch.randn(1, 3, 2), torch.ones(1, 3, dtype=torch.bool), 0)
