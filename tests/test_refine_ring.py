"""A correct hint never collapses a region (issue 23's buckle).

On a 27-MP photo a goggle buckle, a solid ring with two holes, lay in the smart band's unknown
region; the first run matted it opaque. Two small black dots painted in its holes (true
background) made the whole buckle vanish to a ghost outline on the rerun. Here the same on a
synthetic scene with exact ground truth: a textured opaque buckle with two holes, on its strap or
floating, deep inside a wide unknown band over a textured background; a first run, then one
black dot in each hole, rerun as the server does (``Engine.rerun``, a full run if it declines).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from drip_core.engines.classical import ClassicalEngine
from drip_core.region import JobRegion


def _texture(rng, shape, scale, amp):
    n = ndimage.gaussian_filter(rng.normal(0, 1, shape), scale)
    return n / n.std() * amp


def buckle_scene(strap: bool, seed: int = 0):
    """(image uint8, trimap, true alpha, the buckle's pixels, its two holes' pixels)."""
    rng = np.random.default_rng(seed)
    h, w = 640, 720
    yy, xx = np.mgrid[:h, :w]
    ring = (yy >= 260) & (yy < 380) & (xx >= 300) & (xx < 400)
    holes = [(yy >= 280) & (yy < 360) & (xx >= 315) & (xx < 342),
             (yy >= 280) & (yy < 360) & (xx >= 358) & (xx < 385)]
    ring &= ~(holes[0] | holes[1])
    solid = ring | ((yy >= 305) & (yy < 335) & (xx >= 190) & (xx < 302) if strap else False)
    subject = xx < 200 + 6 * np.sin(yy / 17)  # the subject's wavy edge, left of the buckle
    alpha = ndimage.gaussian_filter((subject | solid).astype(float), 0.7)
    alpha[solid] = 1.0
    fg = np.stack([m + _texture(rng, (h, w), 2, a) for m, a in ((0.55, 0.08), (0.42, 0.08), (0.3, 0.06))],
                  -1)
    bg = np.stack([m + _texture(rng, (h, w), 4, 0.07) for m in (0.25, 0.55, 0.65)], -1)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg + rng.normal(0, 0.01, (h, w, 3))
    image = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    trimap = np.full((h, w), 128, np.uint8)        # a wide band: the buckle deep inside it
    trimap[xx < 150] = 255
    trimap[(xx > 540) | ((xx > 240) & ((yy < 100) | (yy > 540)))] = 0
    return image, trimap, alpha, ring, holes


def sad(alpha_u8, gt):
    return float(np.abs(alpha_u8 / 255.0 - gt).sum() / 1000)


@pytest.mark.parametrize("strap", [True, False], ids=["on its strap", "floating"])
def test_black_dots_in_a_buckles_holes_keep_the_buckle(strap):
    image, trimap, gt, ring, holes = buckle_scene(strap)
    engine = ClassicalEngine()
    region = JobRegion.around_unknown(image, trimap, engine.context_margin)
    first = engine.run(region)
    fg, alpha = region.paste(first.foreground, first.alpha, np.uint8)
    assert alpha[ring].mean() / 255 > 0.95            # the first run mattes the buckle opaque
    edited = trimap.copy()
    yy, xx = np.ogrid[:trimap.shape[0], :trimap.shape[1]]
    for hole in holes:                                # a 5-px dot in the middle of each hole
        ys, xs = np.nonzero(hole)
        edited[(yy - ys.mean()) ** 2 + (xx - xs.mean()) ** 2 <= 25] = 0
    assert (gt[edited != trimap] == 0).all()          # a correct hint
    rerun = engine.rerun(first.rerun_state, image, edited, fg, alpha)
    after = rerun.alpha if rerun is not None else engine.matte(image, edited, dtype=np.uint8).alpha
    assert after[ring].mean() >= 0.9 * alpha[ring].mean(), (alpha[ring].mean(), after[ring].mean())
    assert sad(after, gt) <= sad(alpha, gt) + 0.2, (sad(alpha, gt), sad(after, gt))
