"""Smart band (issue 12): a trimap from a rough selection that adapts to the edge."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from drip_core.engines import refining_engine
from drip_core.errors import EngineError
from drip_core.trimaps import build as _build
from drip_core.trimaps import from_selection
from drip_core.trimaps.smart_band import DEFAULT
from drip_core.trimaps.smart_band import smart_trimap as _smart_trimap


def smart_trimap(*args, **kwargs):
    """The smart band as the server runs it: its second pass mattes with the registry's engine."""
    return _smart_trimap(*args, engine=refining_engine(), **kwargs)


def build(*args, **kwargs):
    return _build(*args, engine=refining_engine(), **kwargs)

BLUE = (0.15, 0.25, 0.8)
ORANGE = (0.95, 0.55, 0.1)


def _scene(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:] = BLUE
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    return img


def _disk(h, w, cy, cx, r):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _finish(img):
    return np.clip(img, 0, 1).astype(np.float32)


def _orange_disk(size, radius, lasso_radius):
    """(image, object mask, selection): an orange disk on the scene, and a lasso a few px
    outside it, off-centre."""
    img = _scene(size, size)
    obj = _disk(size, size, size // 2, size // 2, radius)
    img[obj] = ORANGE
    sel = _disk(size, size, size // 2 + 1, size // 2 - 1, lasso_radius).astype(np.uint8) * 255
    return _finish(img), obj, sel


def test_crisp_disk_gets_a_narrow_band_and_correct_labels():
    h = w = 160
    img, obj, sel = _orange_disk(160, 50, 53)
    tri = smart_trimap(img, sel)
    assert tri.dtype == np.uint8 and set(np.unique(tri)) <= {0, 128, 255}
    assert not (tri[~obj] == 255).any()                     # no definite foreground outside the disk
    assert not (tri[obj] == 0).any()                        # no definite background inside it
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - 80, xx - 80)
    assert (tri[np.abs(r - 50) < 1] == 128).all()           # the true edge is unknown
    assert r[tri == 128].max() < 53 + 12 and r[tri == 128].min() > 53 - 12   # within band 12
    fixed = from_selection(sel, 12)
    assert (tri == 128).sum() < 0.7 * (fixed == 128).sum()  # narrower than today's default band


def _hairy(h=200, w=200):
    """Orange block (rows >= 100) with 1-px strands every 4 px rising to row 80; blue between."""
    img = _scene(h, w, 1)
    obj = np.zeros((h, w), bool)
    obj[100:, 10:190] = True
    obj[80:100, 10:190:4] = True
    img[obj] = ORANGE
    return _finish(img), obj


def test_hairy_edge_gets_a_wide_band_and_background_between_strands_is_not_foreground():
    img, obj = _hairy()
    sel = np.zeros(obj.shape, np.uint8)
    sel[84:, 5:195] = 255          # the lasso cuts the strands' tips and squares the sides off
    tri = smart_trimap(img, sel)
    between = np.zeros(obj.shape, bool)
    between[86:100, 12:188:4] = True      # blue columns between strands, inside the selection
    assert not (between & obj).any()
    assert (tri[between] != 255).all()
    # the strands' tips above the lasso are not forced to background
    assert (tri[80:84][obj[80:84]] == 128).mean() > 0.8
    # the band is wider than on a crisp edge: unknown from the tips to below the strands' roots
    col = tri[:, 100]
    unknown_rows = np.nonzero(col == 128)[0]
    assert unknown_rows.min() <= 80 and unknown_rows.max() >= 99     # the strands' last row
    assert (tri == 255).any() and (tri == 0).any()
    # the solid block stays foreground
    assert (tri[130:, 30:170] == 255).mean() > 0.9


def _dense_hair(size=300, tips=90, cut=130, roots=170):
    """Orange block below ``roots`` under dense, fine hair: every pixel between ``tips`` and
    ``roots`` a random mix of orange over blue (alpha 0.5-0.95 below the lasso's ``cut``, thinning
    out above it).  No pure-blue gaps: the background only shows mixed into the hair's colour."""
    img = _scene(size, size, 2)
    rng = np.random.default_rng(3)
    alpha = np.zeros((size, size), np.float32)
    alpha[roots:, 10:-10] = 1
    rows = np.arange(size)[:, None]
    thinning = np.clip((rows - tips) / (cut - tips), 0, 1)
    hair = rng.uniform(0.5, 0.95, (size, size)) * np.where(rows >= cut, 1.0, thinning)
    alpha[tips:roots, 10:-10] = hair[tips:roots, 10:-10]
    img = alpha[..., None] * np.array(ORANGE, np.float32) + (1 - alpha[..., None]) * img
    sel = np.zeros((size, size), np.uint8)
    sel[cut:, 5:-5] = 255
    mixed = np.zeros((size, size), bool)
    mixed[cut + 4:roots, 10:-10] = True         # the hair inside the lasso, beyond its own band
    return _finish(img), sel, mixed


def test_hair_inside_the_lasso_coloured_like_the_strands_outside_is_not_definite_foreground():
    img, sel, mixed = _dense_hair()
    # step 4a alone: step 7 (issue 24) gives the foreground back what the first alpha finds opaque
    on = replace(DEFAULT, safe=False)
    off = replace(on, strand_ratio=np.inf)             # step 4a off
    tri, without = smart_trimap(img, sel, params=on), smart_trimap(img, sel, params=off)
    assert (tri[mixed] == 255).mean() < 0.8 * (without[mixed] == 255).mean()
    assert (tri[200:, 30:-30] == 255).all()            # the solid block stays foreground
    # a crisp edge has no strands outside: the step changes nothing there
    img, _, sel = _orange_disk(160, 50, 53)
    assert np.array_equal(smart_trimap(img, sel), smart_trimap(img, sel, params=off))


def test_always_some_foreground_and_background():
    img = _scene(64, 64)
    img = _finish(img)
    tiny = np.zeros((64, 64), np.uint8)
    tiny[30:33, 30:33] = 255
    tri = smart_trimap(img, tiny)
    assert (tri == 255).any() and (tri == 0).any()
    almost = np.full((64, 64), 255, np.uint8)
    almost[:2] = 0
    tri = smart_trimap(img, almost)
    assert (tri == 255).any() and (tri == 0).any()
    one = np.zeros((64, 64), np.uint8)
    one[5, 60] = 255
    tri = smart_trimap(img, one)
    assert tri[5, 60] == 255 and (tri == 0).any()


def test_empty_and_full_selections_as_from_selection():
    img = _finish(_scene(32, 40))
    with pytest.raises(EngineError) as exc:
        smart_trimap(img, np.zeros((32, 40), np.uint8))
    assert exc.value.code == "empty_selection"
    full = np.full((32, 40), 255, np.uint8)
    assert (smart_trimap(img, full) == from_selection(full, 12)).all()


def test_band_radius_dispatch_and_input_checks():
    img = _finish(_scene(48, 48))
    sel = _disk(48, 48, 24, 24, 12).astype(np.uint8) * 255
    # the one dispatcher (drip_core.trimaps.build): a number = fixed band, "auto" = smart band
    assert (build("selection_band", sel, 5, image=img) == from_selection(sel, 5)).all()
    assert (build("selection_band", sel, "auto", image=img) == smart_trimap(img, sel)).all()
    img8 = (img * 255).astype(np.uint8)
    assert (build("selection_band", sel, "auto", image=img8)
            == smart_trimap(img8 / np.float32(255), sel)).all()
    for bad in ("wide", -1, 2.5):
        with pytest.raises(EngineError):
            build("selection_band", sel, bad, image=img)
    with pytest.raises(EngineError):
        build("selection_band", sel, "auto")  # the smart band needs the image
    with pytest.raises(EngineError):
        smart_trimap(img, sel[:40])
    with pytest.raises(EngineError):
        smart_trimap(img[..., 0], sel)
    # bool and float selections are read as drip_core.trimaps reads them
    assert (smart_trimap(img, sel > 0) == smart_trimap(img, sel)).all()
    assert (smart_trimap(img, sel / 255.0) == smart_trimap(img, sel)).all()


def test_large_layers_are_analysed_at_a_reduced_resolution():
    # a small work scale exercises the reduction path on a small image
    from dataclasses import replace
    h = w = 240
    img, obj, sel = _orange_disk(240, 80, 84)
    tri = smart_trimap(img, sel, params=replace(DEFAULT, work_scale=40.0))
    assert tri.shape == (h, w)
    assert not (tri[~obj] == 255).any() and not (tri[obj] == 0).any()
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - 120, xx - 120)
    assert (tri[np.abs(r - 80) < 1] == 128).all()
    assert (tri == 255).any() and (tri == 0).any()


def _soft_rim_disk(size=200, radius=50, rim=12):
    """(image, alpha, soft side): an orange disk on the scene whose right half has a fur-like rim
    (alpha falling to 0 over ``rim`` px, fluctuating along the outline); the left half is crisp."""
    img = _scene(size, size)
    yy, xx = np.mgrid[:size, :size]
    c = size // 2
    r = np.hypot(yy - c, xx - c)
    soft = xx > c
    alpha = np.where(r <= radius, 1.0, np.where(soft, np.clip(1 - (r - radius) / rim, 0, 1), 0.0))
    strands = 0.6 + 0.4 * np.sin(np.arctan2(yy - c, xx - c) * 40) ** 2
    alpha = np.where((r > radius) & soft, alpha * strands, alpha)
    img = img * (1 - alpha[..., None]) + np.array(ORANGE, np.float32) * alpha[..., None]
    return _finish(img), alpha, soft


def _lasso_cutting_the_rim():
    yy, xx = np.mgrid[:200, :200]
    return (np.hypot(yy - 100, xx - 100) <= 53).astype(np.uint8) * 255


def test_second_pass_widens_the_band_where_the_first_alpha_leaks_into_the_background():
    img, alpha, soft = _soft_rim_disk()
    sel = _lasso_cutting_the_rim()
    first = smart_trimap(img, sel, params=replace(DEFAULT, refine=False))
    tri = smart_trimap(img, sel)
    rim = (alpha > 0.05) & (alpha < 1)
    # the rim's outer part was definite background; the second pass makes most of it unknown
    assert (first[rim & soft] == 0).sum() > 300
    assert (tri[rim & soft] == 0).sum() < 0.3 * (first[rim & soft] == 0).sum()
    # the crisp half keeps its narrow band, and nothing becomes definite on the wrong side
    assert (abs(int((tri[~soft] == 128).sum()) - int((first[~soft] == 128).sum()))
            < 0.05 * (first[~soft] == 128).sum())
    assert not ((tri == 255) & (alpha < 1)).any() and not ((tri == 0) & (alpha > 0.5)).any()
    # and the matte is better for it
    from drip_core.engines import get_engine
    engine = get_engine("classical")
    err_first = np.abs(engine.matte(img, first).alpha - alpha).sum()
    err = np.abs(engine.matte(img, tri).alpha - alpha).sum()
    assert err < 0.8 * err_first


def test_second_pass_of_a_large_layer_mattes_at_half_the_working_resolution():
    # a small refine scale exercises the half-resolution path on a small image
    img, alpha, soft = _soft_rim_disk()
    sel = _lasso_cutting_the_rim()
    first = smart_trimap(img, sel, params=replace(DEFAULT, refine=False))
    tri = smart_trimap(img, sel, params=replace(DEFAULT, refine_scale=60.0))
    rim = (alpha > 0.05) & (alpha < 1)
    assert (tri[rim & soft] == 0).sum() < 0.3 * (first[rim & soft] == 0).sum()
    # the coarser alpha widens a crisp edge a little, not much
    assert (tri[~soft] == 128).sum() < 1.5 * (first[~soft] == 128).sum()
    assert not ((tri == 255) & (alpha < 1)).any() and not ((tri == 0) & (alpha > 0.5)).any()


def _ring_with_hole(shade=None):
    """A large orange disk on the blue scene with a blue hole deep inside (beyond the examined
    zone), a thin blue line elsewhere inside, and optionally a darker-orange patch; the lasso
    follows the disk's outline a few px out, hole filled (a user does not trace holes)."""
    size = 400
    img = _scene(size, size, 2)
    obj = _disk(size, size, 200, 200, 170)
    hole = _disk(size, size, 200, 200, 30)
    line = np.zeros((size, size), bool)
    line[110:125, 199:201] = True            # 2 px wide, deep inside: a strand, not a hole
    img[obj & ~hole & ~line] = ORANGE
    if shade is not None:
        img[shade] = np.asarray(ORANGE, np.float32) * 0.9
    sel = _disk(size, size, 200, 200, 174).astype(np.uint8) * 255
    return _finish(img), obj & ~hole, hole, line, sel


def test_a_hole_deep_inside_the_selection_becomes_background_with_an_unknown_rim():
    img, obj, hole, line, sel = _ring_with_hole()
    tri = smart_trimap(img, sel)
    core = _disk(400, 400, 200, 200, 20)
    assert (tri[core] == 0).all()                          # the hole's core is background
    rim = hole & ~_disk(400, 400, 200, 200, 27)
    assert (tri[rim] != 255).all()                         # its edge is not forced to foreground
    assert (tri[line] == 255).mean() > 0.9                 # a thin line is no hole
    deep_obj = obj & ~_disk(400, 400, 200, 200, 50) & _disk(400, 400, 200, 200, 120) & ~line
    assert (tri[deep_obj] == 255).mean() > 0.95            # the rest of the interior stays foreground
    # with a blind trust in the selection deep inside (trust_deep tiny), the hole would be foreground
    blind = smart_trimap(img, sel, params=replace(DEFAULT, trust_deep=1e-6))
    assert (blind[core] == 255).all()


def test_shading_inside_the_object_does_not_become_a_hole():
    shade = _disk(400, 400, 200, 120, 28)
    img, obj, hole, line, sel = _ring_with_hole(shade)
    tri = smart_trimap(img, sel)
    assert (tri[_disk(400, 400, 200, 120, 20)] == 255).all()
