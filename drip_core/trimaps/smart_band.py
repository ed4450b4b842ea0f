"""Smart band: a trimap from a rough selection whose unknown band adapts to the edge.

A fixed band around a lasso is too narrow where hair or foliage sticks out, and it trusts the
selection's interior blindly (sky between strands, the gap between two figures stay opaque).
Here the band follows the image:

1. Scale.  Every length is a fraction of the object's scale s = sqrt(selected area), so an
   800-px photo and its 25-MP original get the same trimap (up to resampling).  Large layers are
   analysed at a reduced working resolution (s about ``work_scale`` px, block means) and the
   trimap is upsampled; the analysis covers the selection's box widened by the zone.
2. Zone.  Only pixels within ``reach * s`` of the selection edge are examined, inside and
   outside; farther outside is background, farther inside foreground unless step 4b finds a
   hole there.
3. Colour models.  p(colour | inside, place) and p(colour | outside, place) are Parzen estimates:
   a coarse spatial grid (cells of ``cell * s``) x a 16^3 RGB histogram, smoothed in space and
   colour, so the models vary across the image (the sky behind the head is not the grass behind
   the feet).  Samples: the zone minus the lasso's uncertainty band.  The selection is a noisy
   label, so, as in GrabCut, the samples are relabelled by their posterior p = P(foreground |
   colour, place) and the models re-estimated (``rounds``): background seen through holes in the
   selection stops counting as foreground, strands outside it stop counting as background.
   Outside samples just beyond the lasso's band (where untraced hair lives) fade in over
   ``ramp_out * s``, so they do not teach the background model the hair's colours.  The final
   posterior takes the selection as a prior whose trust grows with the distance d from its edge
   (prior odds exp(d / trust_in) inside, exp(-d / trust_out) outside): a hole deep inside or a
   foreground-coloured thing far outside needs stronger colour evidence than one at the edge.
4. Labels.  Inside the selection: foreground where p is high, a background candidate (a hole)
   where p is low, unknown between.  Outside: background where p is low; foreground-like pixels
   (hair the lasso did not trace) become unknown, never definite foreground.  A band of
   ``base * s`` around the lasso is always unknown (the user's hand is not precise).
4a. Hair inside.  Foreground-like pixels outside, beyond the lasso's band, are strands it did
   not trace.  Inside the zone, a colour much likelier among those strands than in the
   foreground around it (``strand_ratio``), and one the background could be mixed into
   (``strand_mixed``), is the same hair seen against the background: unknown, not foreground
   (GT04's pink hair over the trees, GT08's doll hair over the sand).
4b. Deeper inside.  Beyond the zone no local model reaches, so the interior is tested against the
   zone's colour models taken over the whole zone, with the selection's prior growing with depth
   (``trust_deep``): the background seen through a wicker ball or between a figure's legs is the
   background around the object.  Only regions at least ``hole_min * s`` thick count as holes (a
   dark strand or a shadow line does not); what this makes doubtful is checked by the second pass.
5. Trimap.  Definite foreground / background are the candidates eroded by ``erode * s``, so
   every change of label (a strand, a hole, the edge itself) gets an unknown rim; where labels
   alternate densely (hair, fur, foliage) the erosion leaves one wide unknown region, where the
   edge is crisp the band stays narrow.  The result always holds some foreground and some
   background when the selection has both an inside and an outside (the classical engine needs
   both).
6. Second pass.  The classical engine mattes the working image once with that trimap, and the
   alpha tells where the band is too narrow: next to definite background the alpha of a band
   that holds the whole transition falls to 0, next to definite foreground it rises to 1.  Where
   it is still clearly above 0 (``leak_bg``) or below 1 (``leak_fg``) within ``leak_near``
   working pixels of a definite label, fur or hair runs on into that label, so the definite
   pixels within ``grow * s`` of those places become unknown.  Elsewhere (a crisp edge, or a
   transition that ends inside the band) the trimap stays as it is.  A doubtful region from step
   4b that this alpha finds nearly opaque (mean above ``hole_keep``: shading that looked like the
   background) goes back to the foreground; left unknown it would come out as haze.  A large
   layer's working image is matted at half its resolution (``refine_scale``), which keeps a
   25-MP layer's trimap near 1 s.

7. Safe interior (v2, issue 24).  Deeper inside the selection than ``safe_depth * s`` (at least
   ``safe_depth_min`` working pixels, the fixed band's 12) the trimap is the fixed band's, definite
   foreground, except where there is evidence of background.  The candidates are the regions
   the first alpha put below 1/2 there.  Evidence is a small gap (inscribed radius up to
   ``hole_tiny * s``: a tangle, a net, hair) or a hole seen through: its rim in the first alpha
   is a real edge (at most ``crisp_rim`` of the 3 px around it mixed).  A solid part whose colour
   merely resembles the background (a black helmet on a dark wall, a dark nose on dark foliage)
   has no edge there: the matte guessed it away, and its rim is a soft ramp.  Such a region and
   its rim go back to definite foreground, and so does any doubt there whose first alpha is
   ``solid_alpha`` or more; mixed doubts (hair inside the lasso, step 4a) stay unknown.
   ``V1`` is the smart band without this step (before issue 24), for the benchmarks.

``drip_core.trimaps.build(..., band_radius="auto", image=...)`` is the entry point for the rest of
the code (an int there gives the fixed band of drip_core.trimaps.from_selection).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from drip_protocol import AUTO_BAND_REACH

from ..blocks import expand_blocks, reduce_image, reduce_trimap
from ..boxes import mask_bbox
from ..errors import EngineError
from ..samples import to_float
from .fixed_band import from_selection
from .values import BACKGROUND, FOREGROUND, UNKNOWN, as_mask, check_shape

WORK_SCALE = 600.0   # object scale (px) at which the analysis runs; larger layers are reduced
BINS = 16            # colour histogram bins per channel


@dataclass(frozen=True)
class Params:
    """Every length is a fraction of the object scale s (sqrt of the selected area)."""
    base: float = 0.015        # always-unknown half-band around the lasso (its hand's precision)
    base_min: float = 3.0      # ... at least this many working pixels
    reach: float = AUTO_BAND_REACH  # examined zone each side of the edge (the plug-in reads that far)
    cell: float = 0.1          # colour-model grid cell
    cell_sigma: float = 1.0    # spatial smoothing of the colour models, in cells
    colour_sigma: float = 0.7  # colour smoothing of the colour models, in bins
    rounds: int = 3            # relabelling rounds
    ramp_out: float = 0.05     # outside samples count fully only this far beyond the band
    trust_in: float = 0.3      # the selection's prior: P(inside is foreground) = logistic(d / trust_in)
    trust_out: float = 0.06    # ... and P(outside is background) = logistic(d / trust_out)
    relabel_in: float = 0.25   # inside samples count as foreground while p >= this
    relabel_out: float = 0.6   # outside samples count as foreground once p >= this
    fg_in: float = 0.45        # inside: foreground candidate when p >= this
    bg_in: float = 0.3         # inside: background candidate when p < this (a hole)
    bg_out: float = 0.6        # outside: background candidate when p < this; else unknown
    erode: float = 0.012       # definite regions are the candidates eroded by this
    erode_min: float = 2.0     # ... at least this many working pixels
    work_scale: float = WORK_SCALE  # object scale (px) of the analysis
    trust_deep: float = 0.3    # deeper inside (step 4b): P(foreground) prior = logistic(d / trust_deep)
    hole_min: float = 0.005    # ... a hole there is at least this thick (its inscribed radius)
    hole_keep: float = 0.9     # ... the second pass gives it back to the foreground when its mean alpha
                               #     is above this (shading that looked like the background)
    refine: bool = True        # the second pass (step 6)
    leak_bg: float = 0.05      # first alpha above this next to definite background: the band ends too early
    leak_fg: float = 0.1       # ... below 1 - this next to definite foreground (looser: a soft but opaque
                               #     inside, shading or texture, is commoner than hair)
    leak_near: float = 2.0     # ... "next to": within this many working pixels
    grow: float = 0.04         # definite pixels this near such a leak become unknown
    refine_scale: float = WORK_SCALE  # the second pass mattes at an object scale of at most this (px)
    strand_ratio: float = 2.0  # step 4a: inside, unknown where p(colour | strands outside) >= this x
                               #     p(colour | foreground) ...
    strand_mixed: float = 0.05 # ... and p(colour | background) >= this x p(colour | foreground)
    strand_samples: float = 5e-5  # ... where the strand model has at least this x s^2 samples nearby
    safe: bool = True          # step 7 (issue 24): the interior stays solid unless there is evidence
    safe_depth: float = 0.03   # ... "interior": deeper inside the selection than this ...
    safe_depth_min: float = 12.0  # ... and than this many working pixels (the fixed band's 12)
    hole_tiny: float = 0.005   # ... a hole at most this thick (inscribed radius) is a gap in a tangle
    crisp_rim: float = 0.6     # ... a larger one is seen through when at most this share of its rim
                               #     (3 px around it) has a mixed first alpha: a real edge
    solid_alpha: float = 0.98  # ... and a doubt whose first alpha is at least this is foreground


DEFAULT = Params()
V1 = Params(safe=False)   # the smart band before issue 24 (the benchmarks compare against it)


# -- public API -------------------------------------------------------------------------------

def smart_trimap(image, selection, shape=None, params: Params = DEFAULT, *, engine=None) -> np.ndarray:
    """Trimap (uint8 0 / 128 / 255) from an image (float HxWx3 in [0, 1], or uint8) and a selection
    mask (>= 128 selected, as drip_core.trimaps.from_selection). ``engine``: the engine the second
    pass mattes with (an Engine, drip_core.engines.registry.refining_engine()); needed unless
    ``params.refine`` is off."""
    if params.refine and engine is None:
        raise EngineError("bad_request", "the smart band's second pass needs an engine to matte with")
    sel = as_mask(selection, "selection")
    check_shape(sel, shape)
    img = _as_image(image)
    if img.shape[:2] != sel.shape:
        raise EngineError("bad_trimap", f"the selection is {sel.shape[1]}x{sel.shape[0]} but the image is "
                                        f"{img.shape[1]}x{img.shape[0]}")
    inside = sel >= 128
    if not inside.any():
        raise EngineError("empty_selection", "nothing is selected")
    if inside.all():
        return np.full(sel.shape, FOREGROUND, np.uint8)  # no edge: as from_selection

    f, sw, (rows, cols) = _working_frame(inside, params)
    crop_in = inside[rows, cols]
    # the analysis runs on the selection's box widened by the zone, reduced by f
    small_img = reduce_image(img[rows, cols], f)
    small_in = reduce_image(crop_in.view(np.uint8), f) >= 0.5
    if not small_in.any() or small_in.all():  # no edge in the box at the working resolution: a thin band
        trimap = np.zeros(inside.shape, np.uint8)
        band = max(1, int(round(params.base_min)))
        trimap[rows, cols] = from_selection(crop_in.astype(np.uint8) * 255, band)
        return _ensure_both(trimap, inside)
    small_tri, deep_doubts = _analyse(small_img, small_in, sw, params)
    alpha = None
    if params.refine:
        small_tri, alpha = _widen_where_alpha_leaks(small_img, small_tri, sw, params, engine, deep_doubts)
    if params.safe:
        small_tri = _keep_the_interior_solid(small_tri, small_in, alpha, sw, params)
    return _full_size(small_tri, f, (rows, cols), inside)


# -- helpers ------------------------------------------------------------------------------------

def _working_frame(inside: np.ndarray, p: Params):
    """(f, sw, box): the integer reduction factor of the analysis, the object scale at the
    working resolution, and the selection's box widened by the examined zone (layer pixels)."""
    s = float(np.sqrt(inside.sum()))
    f = max(1, int(s // p.work_scale))
    sw = s / f
    return f, sw, mask_bbox(inside, int(np.ceil(p.reach * sw + 2)) * f)


def _full_size(small_tri: np.ndarray, f: int, box, inside: np.ndarray) -> np.ndarray:
    """The layer's trimap from the working one (``box``: where it lies)."""
    crop_in = inside[box]
    sub = expand_blocks(small_tri, f, crop_in.shape)
    # the reduced selection can differ from the true one by a pixel or so: keep definite labels on
    # their side of the real selection edge
    sub[(sub == FOREGROUND) & ~crop_in] = UNKNOWN
    trimap = np.zeros(inside.shape, np.uint8)
    trimap[box] = sub
    return _ensure_both(trimap, inside)


def _as_image(image) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] < 3 or img.size == 0:
        raise EngineError("bad_image", f"image must be HxWx3, got shape {img.shape}")
    img = img[:, :, :3]
    if np.issubdtype(img.dtype, np.floating):
        return img
    if img.dtype != np.uint8 and img.dtype != np.uint16:
        raise EngineError("bad_image", f"image must be float in [0, 1], uint8 or uint16, got {img.dtype}")
    return to_float(img)


def _ensure_both(trimap: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Some definite foreground and background whenever the selection has an inside and an outside."""
    if not (trimap == FOREGROUND).any():
        d = ndimage.distance_transform_edt(inside)
        trimap[(d >= max(1.0, 0.5 * d.max())) & inside] = FOREGROUND
    if not (trimap == BACKGROUND).any():
        d = ndimage.distance_transform_edt(~inside)
        trimap[(d >= max(1.0, 0.5 * d.max())) & ~inside] = BACKGROUND
    return trimap


def _colour_bins(img: np.ndarray) -> np.ndarray:
    q = np.clip((img * BINS).astype(np.int32), 0, BINS - 1)
    return (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]


def _binomial(sigma: float) -> np.ndarray:
    """The binomial kernel whose variance is closest to sigma^2 (a short Gaussian)."""
    n = max(1, int(round(4.0 * sigma * sigma)))
    k = np.array([1.0])
    for _ in range(n):
        k = np.convolve(k, [0.5, 0.5])
    return k.astype(np.float32)


def _smooth(hist: np.ndarray, sigmas) -> np.ndarray:
    """A histogram smoothed along its leading axes by the binomial kernels of ``sigmas``."""
    for axis, sigma in enumerate(sigmas):
        hist = ndimage.correlate1d(hist, _binomial(sigma), axis=axis, mode="constant")
    return hist


class _LocalColourModel:
    """p(colour | class, place) as smoothed histograms on a spatial grid x RGB bins."""

    def __init__(self, shape, cell: float):
        self.cell = max(8.0, cell)
        self.gy = int(np.ceil(shape[0] / self.cell)) + 1
        self.gx = int(np.ceil(shape[1] / self.cell)) + 1

    def fit(self, ys, xs, bins, weights, cell_sigma, colour_sigma) -> np.ndarray:
        # bilinear splat of each sample onto the 4 nearest cell centres
        fy, fx = ys / self.cell, xs / self.cell
        y0, x0 = np.floor(fy).astype(np.int64), np.floor(fx).astype(np.int64)
        wy, wx = (fy - y0).astype(np.float32), (fx - x0).astype(np.float32)
        n = BINS ** 3
        hist = np.zeros(self.gy * self.gx * n, np.float32)
        for dy, dx, ww in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx),
                           (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
            idx = ((np.minimum(y0 + dy, self.gy - 1) * self.gx + np.minimum(x0 + dx, self.gx - 1)) * n + bins)
            hist += np.bincount(idx, weights * ww, minlength=hist.size).astype(np.float32)
        hist = _smooth(hist.reshape(self.gy, self.gx, BINS, BINS, BINS),
                       (cell_sigma, cell_sigma) + (colour_sigma,) * 3)
        total = hist.sum(axis=(2, 3, 4), keepdims=True)
        return hist.reshape(self.gy, self.gx, n), total.reshape(self.gy, self.gx)

    def lookup(self, model, ys, xs, bins) -> np.ndarray:
        hist, total = model
        fy, fx = ys / self.cell, xs / self.cell
        y0, x0 = np.floor(fy).astype(np.int64), np.floor(fx).astype(np.int64)
        wy, wx = (fy - y0).astype(np.float32), (fx - x0).astype(np.float32)
        num = np.zeros(ys.shape, np.float32)
        den = np.zeros(ys.shape, np.float32)
        for dy, dx, ww in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx),
                           (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
            cy, cx = np.minimum(y0 + dy, self.gy - 1), np.minimum(x0 + dx, self.gx - 1)
            num += ww * hist[cy, cx, bins]
            den += ww * total[cy, cx]
        return num, den


def _analyse(img: np.ndarray, inside: np.ndarray, sw: float,
             p: Params) -> tuple[np.ndarray, np.ndarray | None]:
    """(the trimap at the working resolution, the doubtful regions deep inside for the second pass)."""
    d_in = ndimage.distance_transform_edt(inside)
    d_out = ndimage.distance_transform_edt(~inside)
    dist = np.where(inside, d_in, d_out)          # distance to the selection edge (>= 1 on both sides)
    base = max(p.base_min, p.base * sw)
    reach = max(base + 2.0, p.reach * sw)
    zone = dist <= reach
    ys, xs = np.nonzero(zone)
    zin = inside[ys, xs]
    zdist = dist[ys, xs]
    bins = _colour_bins(img[ys, xs])
    model = _LocalColourModel(inside.shape, p.cell * sw)

    # samples: the zone minus the lasso's own uncertainty band; labels start as the selection.
    # Just outside the band the untraced hair lives: those samples fade in over ramp_out, so
    # they do not teach the background model the hair's colours
    ramp = np.where(zin, 0.0, p.ramp_out * sw)
    sample = np.clip((zdist - base) / np.maximum(ramp, 1e-6), 0.0, 1.0).astype(np.float32)
    lf, lb, label = _relabelled(model, ys, xs, bins, zin, sample, p)

    # the selection as a prior whose trust grows with the distance from its edge: a hole deep
    # inside or a foreground-coloured thing far outside needs stronger colour evidence than one
    # at the edge (outside trust grows faster: far clutter is commoner than long strands)
    length = np.where(zin, p.trust_in, p.trust_out) * sw
    prior_odds = np.exp(np.clip(np.where(zin, zdist, -zdist) / length, -30.0, 30.0)).astype(np.float32)
    prob = lf * prior_odds / (lf * prior_odds + lb)
    P = np.where(inside, 1.0, 0.0).astype(np.float32)
    P[ys, xs] = prob
    hairy = _like_the_strands_outside(model, ys, xs, bins, zin, zdist, prob, lf, lb, base, sw, p)
    P[ys[hairy], xs[hairy]] = np.minimum(prob[hairy], 0.5 * (p.bg_in + p.fg_in))   # neither candidate
    doubt = _look_deeper_inside(P, img, inside & (dist > reach), dist, bins, sample, label, sw, p)
    tri, e = _labels(P, inside, dist <= base, sw, p)
    return tri, _doubt_regions(doubt, tri, inside, e)


def _relabelled(model, ys, xs, bins, zin, sample, p: Params):
    """(foreground likelihood, background likelihood, labels) of the zone's pixels after the
    relabelling rounds: the selection is a noisy label, so the samples are relabelled by their
    posterior and the colour models fitted again (as in GrabCut)."""
    label = zin.astype(np.float32)                 # 1 = foreground
    for _ in range(max(1, p.rounds)):
        wf = sample * label
        wb = sample * (1.0 - label)
        mf = model.fit(ys, xs, bins, wf, p.cell_sigma, p.colour_sigma)
        mb = model.fit(ys, xs, bins, wb, p.cell_sigma, p.colour_sigma)
        nf, df = model.lookup(mf, ys, xs, bins)
        nb, db = model.lookup(mb, ys, xs, bins)
        # class likelihoods; a floor (a fraction of a uniform density) keeps unseen colours neutral
        eps = 1e-3 / BINS ** 3
        lf = nf / np.maximum(df, 1e-12) + eps
        lb = nb / np.maximum(db, 1e-12) + eps
        prob = lf / (lf + lb)
        # relabel the samples by their posterior, with the selection as a prior
        label = np.where(zin, prob >= p.relabel_in, prob >= p.relabel_out).astype(np.float32)
    return lf, lb, label


def _labels(P: np.ndarray, inside: np.ndarray, band: np.ndarray, sw: float, p: Params):
    """(trimap, erosion) from the posterior P: inside, foreground where clearly foreground-coloured,
    a background candidate (a hole in the object) where clearly background-coloured, unknown
    between; outside, background unless foreground-like (strands the lasso missed), which is
    unknown, never definite foreground. ``band``: the lasso's own uncertainty, always unknown.
    Definite labels are the candidates eroded, so every change of label gets an unknown rim."""
    fg_cand = inside & (P >= p.fg_in) & ~band
    bg_cand = np.where(inside, P < p.bg_in, P < p.bg_out) & ~band
    e = max(p.erode_min, p.erode * sw)
    tri = np.full(inside.shape, UNKNOWN, np.uint8)
    tri[ndimage.distance_transform_edt(fg_cand) > e] = FOREGROUND
    tri[ndimage.distance_transform_edt(bg_cand) > e] = BACKGROUND
    return tri, e


def _like_the_strands_outside(model, ys, xs, bins, zin, zdist, prob, lf, lb, base, sw, p: Params):
    """Step 4a: the zone pixels inside the selection whose colour is the hair it missed outside.

    A strand's colour is the hair's mixed with the background behind it; inside the lasso that
    colour is hair too, but the foreground model, taught by the whole interior, takes it for the
    object.  Compared with the strands' own local model it is the likelier one there."""
    strands = ~zin & (zdist > base) & (prob >= p.bg_out)
    if not strands.any():
        return np.zeros(ys.shape, bool)
    ns, ds = model.lookup(model.fit(ys, xs, bins, strands.astype(np.float32), p.cell_sigma, p.colour_sigma),
                          ys, xs, bins)
    ls = ns / np.maximum(ds, 1e-12)
    return (zin & (ds > p.strand_samples * sw * sw)    # strands nearby, not one stray pixel
            & (ls >= p.strand_ratio * lf) & (lb >= p.strand_mixed * lf))


def _global_likelihood(bins, weights, colour_sigma) -> np.ndarray:
    """p(colour | class) over the whole zone: a smoothed RGB histogram, normalised."""
    hist = np.bincount(bins, weights, minlength=BINS ** 3).astype(np.float32).reshape(BINS, BINS, BINS)
    hist = _smooth(hist, (colour_sigma,) * 3)
    return hist.ravel() / max(float(hist.sum()), 1e-12)


def _look_deeper_inside(P, img, deep, dist, bins, sample, label, sw, p: Params):
    """Step 4b: P for the selection's interior beyond the zone, where no local colour model reaches,
    from the zone's colour models taken over the whole zone (the background seen through a wicker
    ball or between a figure's legs is the background around it).  Thin background-coloured
    things there (a dark strand, a shadow line) are no hole.  Returns the pixels this made doubtful."""
    ys, xs = np.nonzero(deep)
    doubt = np.zeros(P.shape, bool)
    if not ys.size:
        return doubt
    dbins = _colour_bins(img[ys, xs])
    eps = 1e-3 / BINS ** 3
    lf = _global_likelihood(bins, sample * label, p.colour_sigma)[dbins] + eps
    lb = _global_likelihood(bins, sample * (1.0 - label), p.colour_sigma)[dbins] + eps
    odds = np.exp(np.clip(dist[ys, xs] / (p.trust_deep * sw), -30.0, 30.0)).astype(np.float32)
    prob = lf * odds / (lf * odds + lb)
    cand = np.zeros(P.shape, bool)
    cand[ys, xs] = prob < p.bg_in
    lab, n = ndimage.label(cand)
    if n:
        thick = ndimage.maximum(ndimage.distance_transform_edt(cand), lab, np.arange(1, n + 1))
        thin = np.concatenate([[False], np.asarray(thick) < p.hole_min * sw])
        prob[thin[lab[ys, xs]]] = 1.0
    P[ys, xs] = prob
    doubt[ys, xs] = prob < p.fg_in
    return doubt


def _doubt_regions(doubt, tri, inside, e) -> np.ndarray | None:
    """Label each connected doubtful region together with the unknown rim the erosion gave it, for
    the second pass to check (0 = none)."""
    if not doubt.any():
        return None
    lab, _ = ndimage.label(doubt)
    near, (iy, ix) = ndimage.distance_transform_edt(lab == 0, return_indices=True)
    return np.where((near <= e + 1.5) & (tri != FOREGROUND) & inside, lab[iy, ix], 0)


def _widen_where_alpha_leaks(img: np.ndarray, tri: np.ndarray, sw: float, p: Params, engine,
                             deep_doubts: np.ndarray | None = None):
    """The second pass: matte with the first trimap, widen its band where that alpha says the
    transition runs on into a definite label (untraced fur outside, hair marked foreground), and
    give the foreground back a doubtful region deep inside that the matte finds opaque.
    Returns (the trimap, that alpha or None when there was none)."""
    # a large layer's working image (object scale up to 2 * work_scale) is matted at half its
    # resolution: the object scale then stays within that of the 800-px photos this was tuned on,
    # and the engine costs a quarter
    g = max(1, int(np.ceil(sw / p.refine_scale - 1e-6)))
    small_tri = tri if g == 1 else reduce_trimap(tri, g)
    if not all((small_tri == v).any() for v in (FOREGROUND, BACKGROUND, UNKNOWN)):
        return tri, None
    try:
        alpha = engine.matte(reduce_image(img, g), small_tri).alpha
    except EngineError:   # cannot happen with both labels present; the first trimap is still good
        return tri, None
    alpha = expand_blocks(alpha, g, tri.shape)
    unknown = tri == UNKNOWN
    grow = p.grow * sw
    out = tri.copy()
    for side, leaks in ((BACKGROUND, alpha > p.leak_bg), (FOREGROUND, alpha < 1.0 - p.leak_fg)):
        near_side = unknown & (ndimage.distance_transform_edt(tri != side) <= p.leak_near)
        seeds = near_side & leaks
        if not seeds.any():
            continue
        widened = (tri == side) & (ndimage.distance_transform_edt(~seeds) <= grow)
        if (tri == side).sum() > widened.sum():   # keep some of each label for the engine
            out[widened] = UNKNOWN
    if deep_doubts is not None:
        # shading that looked like the background comes out nearly opaque (haze if left unknown);
        # a real hole or a see-through tangle does not
        mean = ndimage.mean(alpha, deep_doubts, np.arange(1, int(deep_doubts.max()) + 1))
        opaque = np.concatenate([[False], np.asarray(mean) > p.hole_keep])
        out[opaque[deep_doubts]] = FOREGROUND
    return out, alpha


# -- step 7: the interior stays solid unless there is evidence ----------------------------------

RIM = 3.0   # working px around a hole whose first alpha tells a real edge from a guessed one


def _interior(inside, sw: float, p: Params) -> np.ndarray:
    """Step 7's interior: the selection deeper than ``safe_depth`` (at least ``safe_depth_min``)."""
    return inside & (ndimage.distance_transform_edt(inside) > max(p.safe_depth_min, p.safe_depth * sw))


def _interior_holes(tri, inside, interior, alpha, sw: float):
    """Step 7's candidate holes: (labels of the connected regions of the ``interior`` that are not
    definite foreground and whose first alpha is below 1/2, 0 = none; per region 1..n its
    inscribed radius / sw and the share of its rim with a mixed first alpha)."""
    low = interior & (tri != FOREGROUND) & (alpha < 0.5)
    lab, n = ndimage.label(low)
    if not n:
        return lab, np.zeros(0), np.zeros(0)
    idx = np.arange(1, n + 1)
    radius = np.asarray(ndimage.maximum(ndimage.distance_transform_edt(low), lab, idx)) / sw
    near, (iy, ix) = ndimage.distance_transform_edt(lab == 0, return_indices=True)
    rim = np.where((near > 0) & (near <= RIM) & inside, lab[iy, ix], 0)
    mixed = np.asarray(ndimage.mean((alpha > 0.05) & (alpha < 0.95), rim, idx))
    return lab, radius, np.nan_to_num(mixed, nan=1.0)


def _keep_the_interior_solid(tri, inside, alpha, sw: float, p: Params) -> np.ndarray:
    """Step 7: a hole the first alpha found in the interior goes back to the foreground, as under a
    fixed band, unless there is evidence of background: a small gap (a tangle, a net, hair) or a
    larger hole seen through, whose rim in the first alpha is a real edge.  A solid part whose
    colour merely resembles the background (a black helmet on a dark wall) has no edge there: the
    matte guessed it away and its rim is a soft ramp.  Without a first alpha (no second pass) the
    whole interior is foreground."""
    interior = _interior(inside, sw, p)
    if alpha is None:
        out = tri.copy()
        out[interior] = FOREGROUND
        return out
    lab, radius, mixed = _interior_holes(tri, inside, interior, alpha, sw)
    no_evidence = np.concatenate([[False], (radius > p.hole_tiny) & (mixed > p.crisp_rim)])
    # a hole without evidence goes back to the foreground with the unknown rim the erosion gave it,
    # and so does a doubt the first alpha found opaque; one it found mixed (hair inside the lasso,
    # step 4a) stays unknown
    rejected = no_evidence[lab]
    near = ndimage.distance_transform_edt(~rejected) <= max(p.erode_min, p.erode * sw) + RIM
    out = tri.copy()
    out[interior & (near | (alpha >= p.solid_alpha)) & (tri != FOREGROUND)] = FOREGROUND
    return out

