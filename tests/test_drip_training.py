"""DRIP training pieces checked against hand computations: the decoder's Laplacian loss,
Algorithm 1's multi-resolution noise, the fast foreground padding, the optimiser default."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")


# ------------------------------------------------------------------ Laplacian loss
def _np_blur(x: np.ndarray, k2: np.ndarray) -> np.ndarray:
    p = np.pad(x, 2, mode="reflect")
    out = np.zeros_like(x)
    for dy in range(5):
        for dx in range(5):
            out += k2[dy, dx] * p[dy:dy + x.shape[0], dx:dx + x.shape[1]]
    return out


def _np_bands(x: np.ndarray, levels: int = 5) -> list[np.ndarray]:
    """Burt-Adelson pyramid written out by hand: blur, take every other sample, put zeros
    back in between, blur with 4x the kernel, subtract."""
    g = np.array([1, 4, 6, 4, 1], np.float64)
    k2 = np.outer(g, g) / 256.0
    bands, cur = [], x
    for _ in range(levels):
        down = _np_blur(cur, k2)[::2, ::2]
        up = np.zeros((2 * down.shape[0], 2 * down.shape[1]))
        up[::2, ::2] = down
        bands.append(cur - _np_blur(up, 4 * k2)[:cur.shape[0], :cur.shape[1]])
        cur = down
    return bands


def test_laplacian_loss_matches_a_hand_computed_pyramid():
    from drip_core.engines.drip.training.losses import laplacian_bands, laplacian_loss

    rng = np.random.default_rng(0)
    a, b = rng.random((64, 48)), rng.random((64, 48))
    ta, tb = (torch.from_numpy(v)[None, None] for v in (a, b))
    got = laplacian_bands(ta)
    want = _np_bands(a)
    assert len(got) == 5  # band-pass levels only: no low-pass residual
    for g, w in zip(got, want):
        np.testing.assert_allclose(g[0, 0].numpy(), w, atol=1e-12)
    pairs = zip(_np_bands(a), _np_bands(b))
    expected = sum(2 ** i * np.abs(x - y).mean() for i, (x, y) in enumerate(pairs)) / 5
    assert float(laplacian_loss(ta, tb)) == pytest.approx(expected, rel=1e-10)


def test_laplacian_loss_ignores_a_constant_offset_and_sees_the_finest_band():
    from drip_core.engines.drip.training.losses import laplacian_loss

    gt = torch.rand(1, 1, 64, 64, dtype=torch.float64)
    # no low-pass term: a constant shift has no band-pass content (L1 / L2 cover it)
    assert float(laplacian_loss(gt + 0.25, gt)) == pytest.approx(0.0, abs=1e-12)
    # a +-d checkerboard is blurred to 0 by [1 4 6 4 1]/16, so it lives in band 0 only:
    # loss = 2**0 * d / 5
    checker = ((torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 2.0 - 1.0).double()
    assert float(laplacian_loss(gt + 0.1 * checker, gt)) == pytest.approx(0.1 / 5, rel=1e-9)


# ------------------------------------------------------------- multi-resolution noise
def test_noise_levels_follow_algorithm_1_for_a_non_square_latent():
    from drip_core.engines.drip.noise import level_weights, pyramid_sizes

    # level 0 is full size; the loop stops only when *both* sides are 1
    assert pyramid_sizes(64, 16, [2.0] * 10) == [(64, 16), (32, 8), (16, 4), (8, 2), (4, 1), (2, 1), (1, 1)]
    assert pyramid_sizes(32, 48, [3.0] * 10) == [(32, 48), (10, 16), (3, 5), (1, 1)]
    assert len(pyramid_sizes(4096, 4096, [2.0] * 10)) == 10  # at most 10 levels
    w = level_weights(torch.tensor([500, 1000]), 7)
    torch.testing.assert_close(w[0], 0.5 * 0.9 ** torch.arange(7, dtype=torch.float32))
    torch.testing.assert_close(w[1], 0.9 ** torch.arange(7, dtype=torch.float32))


def test_noise_is_the_weighted_level_sum_over_its_global_std():
    import torch.nn.functional as F

    from drip_core.engines.drip.noise import multi_res_noise

    shape, t = (2, 4, 64, 16), torch.tensor([999, 0])
    got = multi_res_noise(shape, t, ratios=[2.0] * 10, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    want = torch.randn(shape, generator=g)
    sizes = [(64, 16), (32, 8), (16, 4), (8, 2), (4, 1), (2, 1), (1, 1)]
    for i, size in enumerate(sizes):
        low = F.interpolate(torch.randn((2, 4, *size), generator=g), size=(64, 16), mode="nearest")
        want = want + low * (t.float() / 1000 * 0.9 ** i).view(2, 1, 1, 1)
    want = want / want.std()
    torch.testing.assert_close(got, want)
    assert float(got.std()) == pytest.approx(1.0, abs=1e-5)
    # one std for the batch: the t = 0 sample (plain white noise) ends up below the t = 999 one
    assert float(got[1].std()) < 0.8 < float(got[0].std())


# --------------------------------------------------------------- foreground padding
def _literal_padding(fg, alpha, iterations, size=13):
    """Algorithm 2 as printed: full 2-D 13x13 Gaussian (outer product), border replicated,
    written back where alpha == 0."""
    from scipy import ndimage

    from drip_core.engines.drip.training.fg_padding import gaussian_kernel1d

    k = gaussian_kernel1d(size).astype(np.float64)
    k2 = np.outer(k, k)
    x = fg.astype(np.float64).copy()
    hole = alpha <= 0
    for _ in range(iterations):
        blurred = np.stack([ndimage.correlate(x[..., ch], k2, mode="nearest") for ch in range(3)], axis=2)
        x[hole] = blurred[hole]
    return x


def test_fast_foreground_padding_equals_algorithm_2():
    from drip_core.engines.drip.training.fg_padding import (
        gaussian_kernel1d,
        pad_foreground,
        pad_foreground_torch,
    )

    k = gaussian_kernel1d(13)
    assert k.sum() == pytest.approx(1.0, abs=1e-6) and k[6] == pytest.approx(0.1737, abs=1e-3)  # sigma 2.3
    rng = np.random.default_rng(1)
    fg = rng.random((45, 70, 3)).astype(np.float32)
    yy, xx = np.mgrid[:45, :70]
    alpha = ((yy - 20) ** 2 + (xx - 40) ** 2 < 15 ** 2).astype(np.float32) * 0.7
    alpha[:, :3] = 0.4  # object touching the border on one side, holes touching the others
    want = _literal_padding(fg, alpha, 20)
    fast = pad_foreground(fg, alpha, iterations=20)
    assert fast.dtype == np.float32 and fast.shape == fg.shape
    assert np.abs(fast - want).max() < 1e-5  # requirement: within 1/255
    assert np.abs(pad_foreground_torch(fg, alpha, 20) - want).max() < 1e-5
    assert np.array_equal(fast[alpha > 0], fg[alpha > 0])
    # nothing to pad: the input comes back
    assert pad_foreground(fg, np.ones((45, 70), np.float32)) is fg
    assert pad_foreground(fg, alpha, iterations=0) is fg


# ------------------------------------------------------------------------ optimiser
def test_optimiser_default_is_the_papers_adam():
    from drip_core.engines.drip.training.harness import make_optimizer
    from drip_core.engines.drip.training.stage1_unet import build_parser
    from drip_core.engines.drip.training.stage2_decoder import build_parser as build_decoder_parser

    params = [torch.nn.Parameter(torch.zeros(3))]
    base = ["--model", "m", "--data", "d", "--output", "o"]
    for parser in (build_parser(), build_decoder_parser()):
        opt = make_optimizer(parser.parse_args(base), params)
        assert type(opt) is torch.optim.Adam and opt.param_groups[0]["weight_decay"] == 0.0
    assert build_parser().parse_args(base).lr == 1e-5  # paper: Adam, lr 1e-5
    opt = make_optimizer(build_parser().parse_args(base + ["--optimizer", "adamw"]), params)
    assert type(opt) is torch.optim.AdamW and opt.param_groups[0]["weight_decay"] == 1e-2
    args = build_parser().parse_args(base + ["--optimizer", "adamw", "--weight-decay", "0.1"])
    opt = make_optimizer(args, params)
    assert opt.param_groups[0]["weight_decay"] == 0.1
