"""Multilevel foreground estimation (Germer, Uelwer, Conrad, Harmeling 2020), vectorised.

For every pixel, F and B minimise
    sum_c (a F_c + (1 - a) B_c - I_c)^2 + sum_{j in N4} w_ij (|F_i - F_j|^2 + |B_i - B_j|^2),
    w_ij = r + g |a_i - a_j|,
solved coarse to fine: the image and alpha are resized to a pyramid, F and B from the
coarser level start each finer one, and a few relaxation sweeps refine them.  Each
sweep solves the per-pixel 2x2 system with the neighbours fixed, updating the two
checkerboard colours in turn (red-black Gauss-Seidel), so it vectorises with no
compiled loop and converges like the original sequential sweep.

Only where the foreground is wanted (``where``: the unknown pixels) is it estimated: once
a level is large enough that the wanted pixels plus CONTEXT pixels around them are a small
part of it, that level relaxes just those pixels, stored as a list (flat indices, their four
neighbours' positions in the list, per-pixel coefficients), with the ring of pixels around
them held at the coarser level's values. So the finest levels cost what the unknown band
costs, not its bounding box, and no level-sized colour array is made. Known opaque pixels
need no solve (F = I there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter

# pixels (at each level's scale) relaxed around the wanted ones: more than the 4 px that two
# red-black sweeps carry the fixed ring's values, so the wanted pixels get the whole-crop values
CONTEXT = 8
SPARSE_FRACTION = 0.5  # a level is relaxed as a pixel list when that list is below this share of it
SPARSE_MIN = 128 * 128  # ... and the level is at least this large (small levels: dense is faster)


@dataclass
class PixelPrior:
    """Data term weight (|F - F^|^2 + |B - B^|^2) on a few pixels (e.g. the K-to-U flows' colours)."""
    idx: np.ndarray     # (n,) sorted flat indices into the crop
    target: np.ndarray  # (n, 6) float32 [F^ | B^]
    weight: np.ndarray  # (n,) float32


def _resize_nearest(x: np.ndarray, h: int, w: int) -> np.ndarray:
    if x.shape[:2] == (h, w):
        return x
    # two 1-D takes: much faster than a 2-D fancy index
    return x.take(_source_index(h, x.shape[0]), axis=0).take(_source_index(w, x.shape[1]), axis=1)


def _split(x: np.ndarray, h2: int, w2: int) -> list[list[np.ndarray]]:
    """The four parity sub-grids x[py::2, px::2] of x zero-padded to (2 h2, 2 w2)."""
    pad = np.zeros((2 * h2, 2 * w2) + x.shape[2:], x.dtype)
    pad[:x.shape[0], :x.shape[1]] = x
    return [[np.ascontiguousarray(pad[py::2, px::2]) for px in (0, 1)] for py in (0, 1)]


def _merge(sub, h: int, w: int) -> np.ndarray:
    h2, w2 = sub[0][0].shape[:2]
    out = np.empty((2 * h2, 2 * w2) + sub[0][0].shape[2:], sub[0][0].dtype)
    for py in (0, 1):
        for px in (0, 1):
            out[py::2, px::2] = sub[py][px]
    return out[:h, :w]


def _add_shifted(rhs, wgt, src, di, dj, tmp):
    """rhs[i, j] += wgt[i, j] * src[i + di, j + dj] where that index exists (tmp: scratch
    of rhs's shape, so no large temporary is allocated per call)."""
    if di == -1:
        r, wg, sr, t = rhs[1:], wgt[1:], src[:-1], tmp[1:]
    elif di == 1:
        r, wg, sr, t = rhs[:-1], wgt[:-1], src[1:], tmp[:-1]
    elif dj == -1:
        r, wg, sr, t = rhs[:, 1:], wgt[:, 1:], src[:, :-1], tmp[:, 1:]
    elif dj == 1:
        r, wg, sr, t = rhs[:, :-1], wgt[:, :-1], src[:, 1:], tmp[:, :-1]
    else:
        r, wg, sr, t = rhs, wgt, src, tmp
    np.multiply(wg, sr, out=t)
    r += t


# neighbour of sub-grid (py, px) in direction d: (sub-grid, row shift, column shift);
# pixel (i, j) of sub-grid (py, px) is pixel (2i + py, 2j + px) of the level
def _neighbour(py, px, d):
    if d == "up":
        return ((0, px), 0, 0) if py == 1 else ((1, px), -1, 0)
    if d == "down":
        return ((1, px), 0, 0) if py == 0 else ((0, px), 1, 0)
    if d == "left":
        return ((py, 0), 0, 0) if px == 1 else ((py, 1), 0, -1)
    return ((py, 1), 0, 0) if px == 0 else ((py, 0), 0, 1)


DIRECTIONS = ("up", "down", "left", "right")
RED_BLACK = ((0, 0), (1, 1), (0, 1), (1, 0))  # (0,0) and (1,1) never touch, nor (0,1) and (1,0)


def _relax(image, alpha, fb, iterations, regularization, gradient_weight, tick, prior=None):
    """Red-black Gauss-Seidel sweeps on fb = [F | B] (H x W x 6); returns the new fb.

    The level is split into its four parity sub-grids so each half-sweep touches only the
    pixels it updates (no masked, wasted work)."""
    h, w = alpha.shape
    a = alpha
    wgt = {d: np.zeros((h, w, 1), image.dtype) for d in DIRECTIONS}
    vertical = regularization + gradient_weight * np.abs(a[1:] - a[:-1])
    horizontal = regularization + gradient_weight * np.abs(a[:, 1:] - a[:, :-1])
    wgt["up"][1:, :, 0] = vertical
    wgt["down"][:-1, :, 0] = vertical
    wgt["left"][:, 1:, 0] = horizontal
    wgt["right"][:, :-1, 0] = horizontal
    wsum = sum(wgt.values())[..., 0]
    # per-pixel 2x2 matrix [[a^2 + W, a(1-a)], [a(1-a), (1-a)^2 + W]], inverted once per level
    a1 = 1.0 - a
    m00 = a * a + wsum
    m01 = a * a1
    m11 = a1 * a1 + wsum
    if prior is not None:  # data term p (|F - F^|^2 + |B - B^|^2): a diagonal and a right-hand side
        target, p = prior
        m00 = m00 + p
        m11 = m11 + p
    det = np.maximum(m00 * m11 - m01 * m01, 1e-12)
    inv = np.stack([m11 / det, -m01 / det, m00 / det], axis=2)
    data = np.concatenate([a[..., None] * image, a1[..., None] * image], axis=2)
    if prior is not None:
        data += p[..., None] * target

    h2, w2 = (h + 1) // 2, (w + 1) // 2
    F = _split(fb, h2, w2)
    W = {d: _split(wgt[d], h2, w2) for d in DIRECTIONS}
    Inv = _split(inv, h2, w2)
    D = _split(data, h2, w2)
    rhs = np.empty_like(F[0][0])
    tmp = np.empty_like(rhs)
    for _ in range(iterations):
        for py, px in RED_BLACK:
            np.copyto(rhs, D[py][px])
            for d in DIRECTIONS:
                (ny, nx), di, dj = _neighbour(py, px, d)
                _add_shifted(rhs, W[d][py][px], F[ny][nx], di, dj, tmp)
            iv = Inv[py][px]
            i00, i01, i11 = iv[..., 0:1], iv[..., 1:2], iv[..., 2:3]
            rf, rb = rhs[..., :3], rhs[..., 3:]
            out = F[py][px]
            t3 = tmp[..., :3]
            np.multiply(i00, rf, out=out[..., :3])
            np.multiply(i01, rb, out=t3)
            out[..., :3] += t3
            np.multiply(i01, rf, out=out[..., 3:])
            np.multiply(i11, rb, out=t3)
            out[..., 3:] += t3
            np.clip(out, 0.0, 1.0, out=out)
        tick()
    return _merge(F, h, w)




def _source_index(n_out: int, n_in: int) -> np.ndarray:
    """Which of n_in samples each of n_out samples takes under nearest-neighbour resizing."""
    return np.minimum((np.arange(n_out) + 0.5) * n_in / n_out, n_in - 1).astype(np.intp)


def _covering(ys: np.ndarray, xs: np.ndarray, shape0, h: int, w: int) -> np.ndarray:
    """h x w bool: the level pixels that the full-resolution pixels (ys, xs) fall in."""
    need = np.zeros((h, w), bool)
    need[ys * h // shape0[0], xs * w // shape0[1]] = True
    return need


class _SparseLevel:
    """One pyramid level relaxed on a pixel list: the wanted pixels (plus context) are the
    nodes; ``flat`` lists them and the ring one pixel around them, whose values stay fixed."""

    def __init__(self, h, w, need, image, alpha, prior, regularization, gradient_weight):
        h0, w0 = alpha.shape
        ring = maximum_filter(need.view(np.uint8), size=3, mode="constant").view(bool)
        self.h, self.w = h, w
        self.flat = np.flatnonzero(ring)
        ys, xs = np.divmod(self.flat, w)
        src = _source_index(h, h0)[ys] * w0 + _source_index(w, w0)[xs]
        self.colour = image.reshape(-1, 3)[src]
        a = alpha.reshape(-1)[src]
        node = np.flatnonzero(need.reshape(-1)[self.flat])
        ny, nx = ys[node], xs[node]
        # (up, down, left, right): the neighbour's position in flat, or the node itself off the edge
        steps = ((-w, ny > 0), (w, ny < h - 1), (-1, nx > 0), (1, nx < w - 1))
        nbr, wgt = [], []
        for step, inside in steps:
            pos = np.searchsorted(self.flat, self.flat[node] + step * inside)
            nbr.append(pos.astype(np.int32))
            wgt.append(np.where(inside, regularization + gradient_weight * np.abs(a[node] - a[pos]), 0)
                       .astype(np.float32))
        an = a[node]
        a1 = 1.0 - an
        wsum = sum(wgt)
        m00, m01, m11 = an * an + wsum, an * a1, a1 * a1 + wsum
        data = np.concatenate([an[:, None] * self.colour[node], a1[:, None] * self.colour[node]], axis=1)
        if prior is not None:
            p, target = _prior_at(prior, src[node])
            m00, m11 = m00 + p, m11 + p
            data += p[:, None] * target
        det = np.maximum(m00 * m11 - m01 * m01, 1e-12)
        inv = np.stack([m11 / det, -m01 / det, m00 / det], axis=1).astype(np.float32)
        # red-black: a node's four neighbours all have the other colour
        self.groups = []
        for parity in (0, 1):
            g = np.flatnonzero((ny + nx) % 2 == parity)
            self.groups.append((node[g], [n[g] for n in nbr], [wg[g, None] for wg in wgt], inv[g],
                                data[g].astype(np.float32)))
        self.size = node.size

    def start(self, previous):
        """Values of every listed pixel from the coarser level (a dense array or a _SparseLevel)."""
        ys, xs = np.divmod(self.flat, self.w)
        if isinstance(previous, _SparseLevel):
            py = _source_index(self.h, previous.h)[ys]
            px = _source_index(self.w, previous.w)[xs]
            want = py * previous.w + px
            pos = np.minimum(np.searchsorted(previous.flat, want), previous.flat.size - 1)
            found = previous.flat[pos] == want
            self.fb = np.where(found[:, None], previous.fb[pos], np.tile(self.colour, 2))
        elif previous is None:  # the coarsest level: every pixel at the listed pixels' mean colour
            self.fb = np.broadcast_to(np.tile(self.colour.mean(axis=0), 2), (self.flat.size, 6))
        else:
            hp, wp = previous.shape[:2]
            self.fb = previous[_source_index(self.h, hp)[ys], _source_index(self.w, wp)[xs]]
        self.fb = np.array(self.fb, dtype=np.float32)  # a writable copy

    def relax(self, iterations, tick):
        fb = self.fb
        for _ in range(iterations):
            for node, nbr, wgt, inv, data in self.groups:
                rhs = data.copy()
                for n, wg in zip(nbr, wgt):
                    rhs += wg * fb[n]
                rf, rb = rhs[:, :3], rhs[:, 3:]
                out = np.empty_like(rhs)
                out[:, :3] = inv[:, 0:1] * rf + inv[:, 1:2] * rb
                out[:, 3:] = inv[:, 1:2] * rf + inv[:, 2:3] * rb
                np.clip(out, 0.0, 1.0, out=out)
                fb[node] = out
            tick()


def _prior_at(prior: PixelPrior, src: np.ndarray):
    """(weight, target) of the prior at the flat crop pixels ``src`` (0 and anything where it has none)."""
    pos = np.minimum(np.searchsorted(prior.idx, src), max(prior.idx.size - 1, 0))
    hit = prior.idx[pos] == src if prior.idx.size else np.zeros(src.shape, bool)
    weight = np.where(hit, prior.weight[pos], 0).astype(np.float32)
    return weight, prior.target[pos]


def _dense_prior(prior: PixelPrior, h: int, w: int, shape0):
    h0, w0 = shape0
    src = (_source_index(h, h0)[:, None] * w0 + _source_index(w, w0)[None, :]).reshape(-1)
    weight, target = _prior_at(prior, src)
    return target.reshape(h, w, 6).astype(np.float32), weight.reshape(h, w)


def _plan(h0, w0, where):
    """[(h, w, need mask or None)] per pyramid level, coarse to fine: a mask where the level is
    relaxed on the wanted pixels plus CONTEXT only (and every finer level then too)."""
    levels = max(1, math.ceil(math.log2(max(h0, w0))))
    ys, xs = np.nonzero(where) if where is not None else (None, None)
    plan, sparse = [], False
    for level in range(levels + 1):
        # geometric pyramid from 1x1 to full size, as in the paper
        h = max(1, round(h0 ** (level / levels)))
        w = max(1, round(w0 ** (level / levels)))
        need = None
        if where is not None and h * w >= SPARSE_MIN:
            need = _covering(ys, xs, (h0, w0), h, w)
            need = maximum_filter(need.view(np.uint8), size=2 * CONTEXT + 1, mode="constant").view(bool)
            if not sparse and np.count_nonzero(need) > SPARSE_FRACTION * h * w:
                need = None
            sparse = sparse or need is not None
        plan.append((h, w, need))
    return plan


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, regularization: float = 1e-5,
                        gradient_weight: float = 1.0, small_size: int = 32, small_iterations: int = 10,
                        big_iterations: int = 2, check_cancel=None, report=None,
                        prior: PixelPrior | None = None, where: np.ndarray | None = None,
                        out: np.ndarray | None = None,
                        background: np.ndarray | None = None) -> np.ndarray:
    """Foreground colours (H x W x 3 float32 in [0, 1]) for ``image`` (float, [0, 1]) and ``alpha``.

    ``where`` (H x W bool, optional): the pixels whose foreground is wanted (e.g. the unknown
    ones); elsewhere the result is the image's own colour. ``out`` (H x W x 3 float32, may be
    ``image`` itself): written in place instead of a new array (only with ``where``).
    ``background`` (H x W x 3 float32, only with ``where``): receives the background estimate
    at the ``where`` pixels. ``report(fraction)`` is called after every relaxation sweep
    (fractions of the work done); ``check_cancel()`` too. ``prior`` adds weight
    (|F - F^|^2 + |B - B^|^2) on its pixels."""
    image = np.asarray(image, dtype=np.float32)
    alpha = np.asarray(alpha, dtype=np.float32)
    if where is not None and not where.any():
        return image.copy() if out is None else out
    if prior is not None and prior.idx.size == 0:
        prior = None
    plan = _plan(*alpha.shape, where)

    def iterations_at(h, w):
        return small_iterations if max(h, w) <= small_size else big_iterations

    tick = _ticker(plan, iterations_at, check_cancel, report)
    fb = _relax_levels(image, alpha, plan, iterations_at, np.float32(regularization),
                       np.float32(gradient_weight), prior, tick)
    return _foreground_of(fb, image, where, out, background)


def _ticker(plan, iterations_at, check_cancel, report):
    """tick(size) -> the callback of one relaxation sweep over ``size`` pixels: counts the work
    done, checks for cancellation and reports the fraction done."""
    work = [0.0, sum(iterations_at(h, w) * (h * w if need is None else np.count_nonzero(need))
                     for h, w, need in plan)]

    def tick(size):
        def step():
            work[0] += size
            if check_cancel is not None:
                check_cancel()
            if report is not None:
                report(min(1.0, work[0] / work[1]))
        return step
    return tick


def _relax_levels(image, alpha, plan, iterations_at, r, g, prior, tick):
    """Foreground and background, coarse to fine: each level starts from the one before
    (the coarsest from the mean colour). Returns the finest level: an H x W x 6 array, or a
    _SparseLevel holding only the pixels it was asked for."""
    h0, w0 = alpha.shape
    fb = None
    # the coarsest level's start: the mean colour (sampled)
    start = image[::4, ::4].reshape(-1, 3).mean(axis=0)
    for h, w, need in plan:
        iterations = iterations_at(h, w)
        if need is not None:
            level = _SparseLevel(h, w, need, image, alpha, prior, r, g)
            level.start(fb)
            level.relax(iterations, tick(level.size))
            fb = level
            continue
        img = _resize_nearest(image, h, w)
        a = _resize_nearest(alpha, h, w)
        if fb is None:
            fb = np.broadcast_to(np.tile(start, 2), (h, w, 6)).copy()
        else:
            fb = _resize_nearest(fb, h, w)
        lvl_prior = None if prior is None else _dense_prior(prior, h, w, (h0, w0))
        fb = _relax(img, a, fb, iterations, r, g, tick(h * w), lvl_prior)
    return fb


def _foreground_of(fb, image, where, out, background):
    """The foreground from the finest level: at the ``where`` pixels (the image's own colour
    elsewhere) or everywhere; ``background`` receives the background estimate there."""
    if isinstance(fb, _SparseLevel):  # the finest level: its listed pixels are at full resolution
        result = image.copy() if out is None else out
        flat_out = result.reshape(-1, 3)
        wanted = where.reshape(-1)[fb.flat]
        flat_out[fb.flat[wanted]] = fb.fb[wanted, :3]
        if background is not None:
            background.reshape(-1, 3)[fb.flat[wanted]] = fb.fb[wanted, 3:]
        return result
    if where is None:
        return np.ascontiguousarray(fb[..., :3])  # the background estimate only serves the relaxation
    result = image.copy() if out is None else out
    result[where] = fb[..., :3][where]
    if background is not None:
        background[where] = fb[..., 3:][where]
    return result
