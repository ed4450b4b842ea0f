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
    from drip_core.drip.losses import laplacian_bands, laplacian_loss

    rng = np.random.default_rng(0)
    a, b = rng.random((64, 48)), rng.random((64, 48))
    ta, tb = (torch.from_numpy(v)[None, None] for v in (a, b))
    got = laplacian_bands(ta)
    want = _np_bands(a)
    assert len(got) == 5  # band-pass levels only: no low-pass residual
    for g, w in zip(got, want):
        np.testing.assert_allclose(g[0, 0].numpy(), w, atol=1e-12)
    expected = sum(2 ** i * np.abs(x - y).mean() for i, (x, y) in enumerate(zip(_np_bands(a), _np_bands(b)))) / 5
    assert float(laplacian_loss(ta, tb)) == pytest.approx(expected, rel=1e-10)


def test_laplacian_loss_ignores_a_constant_offset_and_sees_the_finest_band():
    from drip_core.drip.losses import laplacian_loss

    gt = torch.rand(1, 1, 64, 64, dtype=torch.float64)
    # no low-pass term: a constant shift has no band-pass content (L1 / L2 cover it)
    assert float(laplacian_loss(gt + 0.25, gt)) == pytest.approx(0.0, abs=1e-12)
    # a +-d checkerboard is blurred to 0 by [1 4 6 4 1]/16, so it lives in band 0 only:
    # loss = 2**0 * d / 5
    checker = ((torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 2.0 - 1.0).double()
    assert float(laplacian_loss(gt + 0.1 * checker, gt)) == pytest.approx(0.1 / 5, rel=1e-9)
