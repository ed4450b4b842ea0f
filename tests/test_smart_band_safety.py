"""Smart band v2 (issue 24): safe by construction, on synthetic scenes with exact ground truth.

Each scene is drip_core.eval.failure_scenes' and its lasso bench/rough_selection's (a smoothed,
shifted outline of the ground truth with thin strands opened away), as the composite suite uses
them.  The checks that name V1 show the failure of the smart band before issue 24.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bench.rough_selection import rough_selection
from drip_core.engines import get_engine, refining_engine
from drip_core.eval import failure_scenes
from drip_core.trimaps import BACKGROUND, FOREGROUND, UNKNOWN, from_selection
from drip_core.trimaps.smart_band import DEFAULT, V1, smart_trimap
from drip_protocol import AUTO_BAND_REACH


def _trimap(scene, lasso, params=DEFAULT):
    return smart_trimap(scene.image, lasso, params=params, engine=refining_engine())


def _alpha(scene, trimap):
    return get_engine("classical").matte(scene.image, trimap).alpha


def _deep_solid(scene, lasso, depth=15):
    return (ndimage.distance_transform_edt(lasso >= 128) > depth) & (scene.gt >= 250)


def test_solid_dark_parts_on_a_dark_background_stay_solid():
    for seed in (0, 1):
        scene = failure_scenes.dark_parts(seed)
        lasso = rough_selection(scene.gt, seed)
        solid = _deep_solid(scene, lasso)
        before = _trimap(scene, lasso, V1)
        assert (before[solid] != FOREGROUND).sum() > 500          # v1 doubted the dark helmet ...
        assert (_alpha(scene, before)[solid] < 0.5).sum() > 0     # ... and made holes in it
        tri = _trimap(scene, lasso)
        assert not (tri[solid] == BACKGROUND).any()
        assert (_alpha(scene, tri)[solid] >= 0.5).all()


def test_a_ring_keeps_its_see_through_holes_and_gets_no_new_ones():
    scene = failure_scenes.ring_holes(0)
    lasso = rough_selection(scene.gt, 0)
    tri = _trimap(scene, lasso)
    alpha = _alpha(scene, tri)
    inside = ndimage.distance_transform_edt(lasso >= 128) > 15
    holes, n = ndimage.label(inside & (scene.gt == 0))
    cores = ndimage.binary_erosion(holes > 0, iterations=3)
    assert n >= 4
    assert (alpha[cores] < 0.5).mean() > 0.9                  # the see-through holes stay holes
    assert (alpha[_deep_solid(scene, lasso)] >= 0.5).all()     # and nothing else becomes one
    fixed = _alpha(scene, from_selection(lasso, 12))
    err, err_fixed = (np.abs(a - scene.gt / 255.0).sum() for a in (alpha, fixed))
    assert err < 0.5 * err_fixed


@pytest.mark.xfail(strict=True, reason="issue 24, not done: the smart band does not follow whiskers beyond "
                   "the lasso (a ridge detector marking them unknown did not help: the classical engine "
                   "mattes thin bright strands over a textured background as background)")
def test_thin_strands_crossing_the_lasso_are_followed_outside_it():
    scene = failure_scenes.whiskers(0)
    lasso = rough_selection(scene.gt, 0)
    # beyond the lasso's own band, and within what the plug-in sends around the selection
    d_out = ndimage.distance_transform_edt(lasso < 128)
    reach = AUTO_BAND_REACH * np.sqrt((lasso >= 128).sum()) - 2
    strands = (d_out > 6) & (d_out < reach) & (scene.gt >= 128)
    assert strands.sum() > 150
    assert (_trimap(scene, lasso, V1)[strands] == UNKNOWN).mean() < 0.3
    assert (_trimap(scene, lasso)[strands] == UNKNOWN).mean() > 0.8


def test_a_lasso_touching_the_image_border():
    for seed in (0, 1):
        scene = failure_scenes.border(seed)
        lasso = rough_selection(scene.gt, seed)
        assert (lasso[-1] >= 128).any() and (lasso[:, 0] >= 128).any()
        tri = _trimap(scene, lasso)
        assert (tri == FOREGROUND).any() and (tri == BACKGROUND).any()
        alpha = _alpha(scene, tri)
        assert (alpha[_deep_solid(scene, lasso)] >= 0.5).all()
        # the interior (deeper than 15 px) is no worse than under a fixed band (to 1/10000 of its area)
        interior = ndimage.distance_transform_edt(lasso >= 128) > 15
        fixed = _alpha(scene, from_selection(lasso, 12))
        err, err_fixed = (np.abs(a - scene.gt / 255.0)[interior].sum() for a in (alpha, fixed))
        assert err <= err_fixed + 1e-4 * interior.sum()
