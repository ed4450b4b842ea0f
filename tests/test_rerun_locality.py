"""A local rerun is local: beyond the reach of the painted pixels the result is the previous one,
exactly, alpha and foreground colours alike (issue 23: a stroke at the chin must not move the
ears). The corners of the edit's box are beyond the reach too: only a disc around it moves."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from drip_core.engines.classical import ClassicalEngine
from drip_core.engines.classical.rerun import REACH, changed_box, resolve_locally
from drip_core.region import JobRegion


def _ring_scene(seed: int = 0):
    """A red disc with a soft, noisy edge on blue, and an unknown ring around the edge."""
    rng = np.random.default_rng(seed)
    h = w = 520
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((215 - r) / 12 + 0.3 * np.sin(np.arctan2(yy - h / 2, xx - w / 2) * 23), 0, 1)
    red, blue = np.array([0.85, 0.15, 0.1]), np.array([0.1, 0.25, 0.85])
    image = alpha[..., None] * red + (1 - alpha[..., None]) * blue + rng.normal(0, 0.03, (h, w, 3))
    image = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    trimap = np.where(r < 170, 255, np.where(r > 240, 0, 128)).astype(np.uint8)
    return image, trimap


def test_pixels_beyond_the_reach_of_an_edit_keep_their_result_exactly():
    image, trimap = _ring_scene()
    engine = ClassicalEngine()
    region = JobRegion.around_unknown(image, trimap, engine.context_margin)
    crop = engine.run(region)
    fg, alpha = region.paste(crop.foreground, crop.alpha, np.uint8)
    edited = trimap.copy()
    painted = np.zeros(trimap.shape, bool)
    painted[255:275, 465:485] = True            # a black stroke across the ring's right side
    edited[painted] = 0
    rerun = resolve_locally(engine, image, edited, crop.rerun_state, changed_box(crop.rerun_state, edited),
                            fg, alpha)
    assert rerun is not None
    far = ndimage.distance_transform_edt(~painted) > REACH
    assert np.array_equal(rerun.alpha[far], alpha[far])
    assert np.array_equal(rerun.foreground[far], fg[far])
    near = ~far & (edited == 128)
    assert (rerun.alpha[near] != alpha[near]).any()   # the edit did move its neighbourhood
    assert (rerun.alpha[painted] == 0).all()


def test_a_brush_edit_is_an_edit_and_a_moved_band_is_a_new_band():
    """Every brush edit is re-solved locally, however large; only a new band (a new selection on
    the same image: the unknown region grows on one edge and shrinks on the other) is run in full."""
    from drip_core.engines.classical.rerun import Solution, is_new_band
    _, trimap = _ring_scene()
    h, w = trimap.shape
    previous = Solution(trimap, (slice(0, h), slice(0, w)), (trimap == 255).astype(np.float32), False)
    yy, xx = np.mgrid[:h, :w]
    stroke = trimap.copy()
    stroke[(np.hypot(yy - 260, xx - 470) < 40)] = 0          # a large black stroke on the band
    grey = trimap.copy()
    grey[(np.hypot(yy - 260, xx - 140) < 40)] = 128          # a large grey stroke into the disc
    r = np.hypot(yy - h / 2 - 12, xx - w / 2)                  # the same band, 12 px lower
    moved = np.where(r < 170, 255, np.where(r > 240, 0, 128)).astype(np.uint8)
    assert not is_new_band(previous, stroke) and not is_new_band(previous, grey)
    assert is_new_band(previous, moved)
