"""A stroke that says the trimap was wrong carries to the same mistake nearby (issue 23).

A rough lasso's band takes holes in hair or in a mesh as solid foreground. A photographer paints
black in one hole; the holes next to it, in the same background colours, should open too, not
only the painted pixels. Here: a textured object with a grid of background-coloured holes, all
known foreground in the trimap, a first run, then one black dot in one hole, rerun as the server
does (``Engine.rerun``).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from drip_core.engines.classical import ClassicalEngine
from drip_core.region import JobRegion


def _texture(rng, shape, scale, amp):
    n = ndimage.gaussian_filter(rng.normal(0, 1, shape), scale)
    return n / n.std() * amp


def mesh_scene(seed: int = 0):
    """(image uint8, trimap, true alpha, per hole its pixels): holes 12 px wide every 32 px."""
    rng = np.random.default_rng(seed)
    h, w = 480, 560
    yy, xx = np.mgrid[:h, :w]
    subject = (yy > 60) & (yy < 420) & (xx > 60) & (xx < 500)
    hole_labels = np.zeros((h, w), int)
    n = 0
    for cy in range(120, 380, 32):
        for cx in range(120, 460, 32):
            n += 1
            hole_labels[(abs(yy - cy) < 6) & (abs(xx - cx) < 6)] = n
    alpha = (subject & (hole_labels == 0)).astype(float)
    fg = np.stack([m + _texture(rng, (h, w), 2, 0.06) for m in (0.6, 0.4, 0.25)], -1)
    bg = np.stack([m + _texture(rng, (h, w), 6, 0.025) for m in (0.2, 0.5, 0.7)], -1)  # out of focus
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg + rng.normal(0, 0.01, (h, w, 3))
    image = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    trimap = np.zeros((h, w), np.uint8)       # the lasso: the subject's outline, holes filled
    trimap[ndimage.binary_dilation(subject, iterations=10)] = 128
    trimap[ndimage.binary_erosion(subject, iterations=10)] = 255
    holes = [hole_labels == i for i in range(1, n + 1)]
    return image, trimap, alpha, holes


def test_a_black_dot_in_one_hole_opens_the_holes_near_it_and_keeps_the_rest():
    image, trimap, gt, holes = mesh_scene()
    engine = ClassicalEngine()
    region = JobRegion.around_unknown(image, trimap, engine.context_margin)
    first = engine.run(region)
    fg, alpha = region.paste(first.foreground, first.alpha, np.uint8)
    painted = holes[len(holes) // 2]
    ys, xs = np.nonzero(painted)
    centre = np.array([ys.mean(), xs.mean()])
    edited = trimap.copy()
    edited[ndimage.binary_erosion(painted, iterations=2)] = 0   # a dot inside the hole
    assert (gt[edited != trimap] == 0).all()                      # a correct hint
    rerun = engine.rerun(first.rerun_state, image, edited, fg, alpha)
    assert rerun is not None
    after = rerun.alpha / 255.0

    def hole_distance(hole):
        hy, hx = np.nonzero(hole)
        return float(np.hypot(hy.mean() - centre[0], hx.mean() - centre[1]))

    near = [h for h in holes if 0 < hole_distance(h) <= 40]
    assert near and all(after[h].mean() < 0.3 for h in near), [after[h].mean() for h in near]
    solid = (gt == 1) & (trimap == 255)
    yy, xx = np.mgrid[:gt.shape[0], :gt.shape[1]]
    around = solid & (np.hypot(yy - centre[0], xx - centre[1]) <= 96)
    assert after[around].mean() > 0.97                       # the object between the holes stays
    far = [h for h in holes if hole_distance(h) > 120]
    assert all(after[h].min() == 1.0 for h in far)           # beyond the reach nothing moves

    mid = [h for h in holes if 40 < hole_distance(h) <= 80]   # a black stroke carries its reach
    assert all(after[h].mean() < 0.3 for h in mid), [after[h].mean() for h in mid]

    # the next stroke, a grey dot in a hole ~100 px away, re-solves the first holes (within its
    # reach, beyond its own reopening: grey reopens less far) and keeps them open
    second = edited.copy()
    other = min(holes, key=lambda h: abs(hole_distance(h) - 101))
    second[ndimage.binary_erosion(other, iterations=2)] = 128
    again = engine.rerun(rerun.rerun_state, image, second, rerun.foreground, rerun.alpha)
    assert again is not None
    assert all(again.alpha[h].mean() / 255.0 < 0.3 for h in near), [again.alpha[h].mean() for h in near]
