"""Edge controls and previews (issue 25): applied by the server to the matte it holds, so a change
of edge controls never re-runs the matting, and a rerun keeps them."""
from __future__ import annotations

import numpy as np
import pytest

from drip_core.client import connect
from drip_core.demo_scene import make_scene
from drip_core.edges import apply_edges, composite
from drip_protocol import EdgeSettings, JobSpec, ProtocolError


def square(size=64, inner=(20, 44)):
    alpha = np.zeros((size, size), np.uint8)
    alpha[inner[0]:inner[1], inner[0]:inner[1]] = 255
    return alpha


def edged(alpha, **controls):
    fg = np.full(alpha.shape + (3,), 200, np.uint8)
    image = np.full(alpha.shape + (3,), 40, np.uint8)
    return apply_edges(fg, alpha, image, EdgeSettings(**controls))


def test_no_controls_change_nothing_and_cost_nothing():
    alpha = square()
    fg, out = edged(alpha)
    assert out is alpha


@pytest.mark.parametrize("shift, side", [(3, 30), (-3, 18), (0.5, 25)])
def test_shift_moves_the_edge_by_that_many_pixels(shift, side):
    _, out = edged(square(), shift=shift)
    covered = (out >= 128).sum()
    assert covered == pytest.approx(side * side, rel=0.12), (shift, covered)


def test_feather_softens_and_contrast_hardens():
    _, soft = edged(square(), feather=6)
    ramp = ((soft > 5) & (soft < 250)).sum()
    assert ramp > 300, "feathering leaves a soft edge"
    _, hard = apply_edges(np.zeros((64, 64, 3), np.uint8), soft, np.zeros((64, 64, 3), np.uint8),
                          EdgeSettings(contrast=100))
    assert ((hard > 5) & (hard < 250)).sum() < ramp / 3, "contrast makes the soft edge steep again"


def test_colour_cleanup_blends_back_to_the_photos_colours():
    fg, _ = edged(square(), colour_cleanup=25)
    assert fg[0, 0].tolist() == [80, 80, 80]  # 25 % of 200 + 75 % of 40


def test_edge_settings_are_checked_like_every_job_field():
    with pytest.raises(ProtocolError) as err:
        JobSpec.from_header(JobSpec(8, 8).to_header() | {"edge": {"shift": 500}}, 10**6)
    assert err.value.code == "bad_request"
    with pytest.raises(ProtocolError):
        JobSpec(8, 8, result_depth=16, preview="black")  # a preview is 8-bit RGB


def test_preview_over_black_is_the_premultiplied_cut_out():
    alpha = square()
    fg = np.full((64, 64, 3), 200, np.uint8)
    shown = composite(fg, alpha, fg, "black")
    assert shown[30, 30].tolist() == [200, 200, 200] and shown[0, 0].tolist() == [0, 0, 0]


def scene():
    image, trimap = make_scene(200, 150)[:2]
    return image, trimap


def test_changing_only_the_edge_controls_reuses_the_matte(server):
    image, trimap = scene()
    with connect(str(server.discovery), spawn=False) as c:
        _, plain, first = c.matte(image, trimap, engine="classical", return_info=True)
        _, grown, info = c.matte(image, trimap, engine="classical", return_info=True,
                                 edge=EdgeSettings(shift=4))
    assert info["rerun"] == "unchanged", "the matting ran again for an edge control"
    assert info["result_id"] != first["result_id"], "a differently edged result needs its own id"
    assert (grown >= 128).sum() > (plain >= 128).sum() + 100
    fg, expected = apply_edges(np.zeros_like(image), plain, image, EdgeSettings(shift=4))
    assert np.array_equal(grown, expected)


def test_a_preview_comes_back_composited(server):
    image, trimap = scene()
    with connect(str(server.discovery), spawn=False) as c:
        fg, alpha = c.matte(image, trimap, engine="classical")
        shown, alpha2 = c.matte(image, trimap, engine="classical", preview="white")
    assert np.array_equal(alpha, alpha2)
    assert np.array_equal(shown, composite(fg, alpha, image, "white"))


def test_a_local_rerun_keeps_the_edge_controls_up_to_their_reach(server):
    """The patch of a rerun is grown by the controls' reach: patched, the client's result is the
    whole edged result, to the pixel."""
    image, trimap = scene()
    edge = EdgeSettings(shift=3, feather=2)
    painted = trimap.copy()
    painted[60:70, 90:100] = 0  # a dab of background paint
    with connect(str(server.discovery), spawn=False) as c:
        c.matte(image, trimap, engine="classical", edge=edge)
        _, patched, info = c.matte(image, painted, engine="classical", edge=edge, return_info=True)
    assert info["rerun"] == "local", info
    with connect(str(server.discovery), spawn=False) as c:
        _, whole, again = c.matte(image, painted, engine="classical", edge=edge, return_info=True)
    assert again["rerun"] == "unchanged"
    assert np.array_equal(patched, whole)
