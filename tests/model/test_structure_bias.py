"""StructureBias (DESIGN 2.1): shapes, masking, pLDDT weighting, chunked == straightforward path."""

from __future__ import annotations

import math

import pytest
import torch

from sepit.model.structure_bias import PHI_LOG_FLOOR, GaussianKernels, StructureBias

B, L, H, D, K = 2, 11, 4, 32, 16


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    coords = torch.cumsum(torch.randn(B, L, 3, generator=g) * 2.0, dim=1)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[:, 0] = mask[:, -1] = False  # CLS / EOS
    mask[1, 5] = False  # a residue without a point
    mask[1, 8:] = False  # padding
    coords[~mask] = float("nan")  # whatever is stored there must not matter
    return coords, mask


def _module(chunk_size: int | None = 3) -> StructureBias:
    torch.manual_seed(0)
    return StructureBias(H, D, num_kernels=K, chunk_size=chunk_size)


def test_shapes_and_zero_without_points():
    coords, mask = _inputs()
    bias, embed = _module()(coords, mask)
    assert bias.shape == (B, H, L, L) and embed.shape == (B, L, D)
    pair = mask[:, :, None] & mask[:, None, :]
    assert torch.isfinite(bias).all() and torch.isfinite(embed).all()
    assert (bias.permute(0, 2, 3, 1)[~pair] == 0).all()
    assert (embed[~mask] == 0).all()
    assert (bias.permute(0, 2, 3, 1)[pair] != 0).any() and (embed[mask] != 0).any()


def test_points_without_mask_contribute_nothing():
    coords, mask = _inputs()
    other = coords.clone()
    other[~mask] = 123.0
    module = _module()
    for a, b in zip(module(coords, mask), module(other, mask), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("weighted", [False, True])
def test_chunked_equals_naive_values_and_grads(weighted):
    coords, mask = _inputs()
    weight = torch.rand(B, L) if weighted else None
    key_bias = torch.zeros(B, L)
    key_bias[1, 8:] = -1e4
    module = _module(chunk_size=3)
    results = []
    for fn in (module.naive, module.forward):
        module.zero_grad()
        bias, embed = fn(coords, mask, weight, key_bias)
        (bias.sin().sum() + embed.square().sum()).backward()
        grads = {n: p.grad.clone() for n, p in module.named_parameters()}
        results.append((bias.detach(), embed.detach(), grads))
    (b0, e0, g0), (b1, e1, g1) = results
    torch.testing.assert_close(b1, b0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(e1, e0, atol=1e-5, rtol=1e-5)
    for name, grad in g0.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(g1[name], grad, atol=1e-5, rtol=1e-5, msg=name)


def test_chunked_without_grad_matches():
    coords, mask = _inputs()
    module = _module(chunk_size=4)
    with torch.no_grad():
        b0, e0 = module.naive(coords, mask)
        b1, e1 = module(coords, mask)
    torch.testing.assert_close(b1, b0, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(e1, e0, atol=1e-6, rtol=1e-5)


def test_plddt_weighting_scales_pairs():
    coords, mask = _inputs()
    module = _module()
    weight = torch.rand(B, L)
    plain, embed = module(coords, mask)
    weighted, embed_w = module(coords, mask, weight)
    expected = plain * (weight[:, :, None] * weight[:, None, :])[:, None]
    torch.testing.assert_close(weighted, expected, atol=1e-6, rtol=1e-5)
    assert torch.equal(embed, embed_w)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="chunk_size"):
        StructureBias(H, D, chunk_size=0)
    with pytest.raises(ValueError, match="coords"):
        _module()(torch.zeros(B, L, 2), torch.ones(B, L, dtype=torch.bool))


def test_kernels_match_gaussian_formula_and_floor_to_exact_zero():
    """phi = N(d; mu_k, sigma_k) within 1e-12 where it matters, exactly 0 (never subnormal) far from mu_k."""
    kernels = GaussianKernels(num_kernels=16, max_distance=32.0)
    dist = torch.tensor([0.0, 3.8, 7.5, 15.0, 40.0, 300.0], dtype=torch.float64)
    phi = kernels.double()(dist)
    std = kernels.stds.abs().double() + 1e-2
    z = (dist[:, None] - kernels.means.double()) / std
    expected = torch.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * std)
    torch.testing.assert_close(phi, expected, rtol=1e-9, atol=1e-12)
    tiny = expected < math.exp(PHI_LOG_FLOOR)
    assert tiny.any() and bool((phi[tiny] == 0).all())
    smallest_normal = torch.finfo(torch.float32).tiny
    phi32 = GaussianKernels(num_kernels=128)(torch.linspace(0, 200, 500))
    assert not bool(((phi32 > 0) & (phi32 < smallest_normal)).any())
