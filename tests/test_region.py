"""The one owner of a job's pixels (drip_core/region.py): crop once, convert once, force the
known pixels once, paste once, at the job's own depth."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from drip_core import trimaps
from drip_core.errors import EngineError
from drip_core.region import JobRegion
from drip_core.samples import from_float, to_float


def scene(h=60, w=80, dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        image = rng.random((h, w, 3), dtype=np.float32)
    else:
        image = rng.integers(0, np.iinfo(dtype).max + 1, (h, w, 3)).astype(dtype)
    trimap = np.zeros((h, w), np.uint8)
    trimap[20:40, 30:60] = 255
    trimap[18:42, 28:62][(trimap[18:42, 28:62] == 0)] = 128
    return image, trimap


def test_the_crop_is_the_unknown_box_plus_the_engines_margin():
    image, trimap = scene()
    region = JobRegion.around_unknown(image, trimap, margin=5)
    rows, cols = region.box
    assert (rows.start, rows.stop, cols.start, cols.stop) == (13, 47, 23, 67)
    crop, tri = region.engine_inputs()
    assert crop.dtype == np.float32 and crop.shape == (34, 44, 3) and tri.shape == (34, 44)
    np.testing.assert_array_equal(crop, image[13:47, 23:67] / np.float32(65535))
    edge = JobRegion.around_unknown(image, trimap, margin=500)  # clipped to the image
    assert edge.shape == trimap.shape


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_known_pixels_come_back_exactly_and_unknown_ones_from_the_engine(dtype):
    image, trimap = scene(dtype=dtype)
    region = JobRegion.around_unknown(image, trimap, margin=3)
    h, w = region.shape
    engine_fg = np.full((h, w, 3), 0.123456, np.float32)  # whatever an engine says, even on known pixels
    engine_alpha = np.full((h, w), 0.654321, np.float32)
    fg, alpha = region.paste(engine_fg, engine_alpha, dtype)
    assert fg.dtype == dtype and alpha.dtype == dtype and fg.shape == image.shape
    known = trimap != 128
    np.testing.assert_array_equal(fg[known], image[known])            # bit-exact at every depth
    full = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    assert (alpha[trimap == 255] == full).all() and (alpha[trimap == 0] == 0).all()
    unknown = trimap == 128
    np.testing.assert_array_equal(alpha[unknown], from_float(np.float32(0.654321), dtype))
    np.testing.assert_array_equal(fg[unknown], from_float(np.float32(0.123456), dtype))


def test_sixteen_bit_results_carry_more_than_256_levels():
    image, trimap = scene()
    trimap[:, :25] = 128
    region = JobRegion.around_unknown(image, trimap, margin=0)
    h, w = region.shape
    ramp = np.linspace(0, 1, h * w, dtype=np.float32).reshape(h, w)
    _, alpha = region.paste(np.zeros((h, w, 3), np.float32), ramp, np.uint16)
    assert np.unique(alpha[trimap == 128]).size > 256


def test_a_deeper_job_asking_for_fewer_bits_converts_the_known_colours():
    image, trimap = scene()
    region = JobRegion.around_unknown(image, trimap, margin=2)
    h, w = region.shape
    fg, alpha = region.paste(np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32), np.uint8)
    assert fg.dtype == np.uint8
    np.testing.assert_array_equal(fg[trimap == 255], np.rint(image[trimap == 255] / 257.0).astype(np.uint8))


def test_float_pixels_are_clipped_for_the_engine_but_returned_as_they_are():
    image, trimap = scene(dtype=np.float32)
    image[0, 0] = (2.5, -0.5, np.float32(0.25))  # HDR and negative values outside the unknown box
    image[25, 20] = (3.0, 0.5, 0.5)               # and one inside it (known background)
    region = JobRegion.around_unknown(image, trimap, margin=10)
    crop, _ = region.engine_inputs()
    assert crop.min() >= 0 and crop.max() <= 1
    h, w = region.shape
    fg, _ = region.paste(np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32), np.float32)
    np.testing.assert_array_equal(fg[0, 0], image[0, 0])
    np.testing.assert_array_equal(fg[25, 20], image[25, 20])


def test_to_float_and_back_are_exact_for_integer_samples():
    for dtype in (np.uint8, np.uint16):
        values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
        np.testing.assert_array_equal(from_float(to_float(values), dtype), values)


@pytest.mark.parametrize("make, code", [
    (lambda i, t: (i, np.where(t == 128, 0, t).astype(np.uint8)), "no_unknown"),
    (lambda i, t: (i, t + 1), "bad_trimap"),
    (lambda i, t: (i, t[:-1]), "bad_trimap"),
    (lambda i, t: (i.astype(np.float64), t), "bad_image"),
    (lambda i, t: (i[..., :2], t), "bad_image"),
])
def test_bad_inputs_name_the_cause(make, code):
    image, trimap = make(*scene())
    with pytest.raises(EngineError) as err:
        JobRegion.around_unknown(image, trimap, 4)
    assert err.value.code == code


def test_an_engine_result_of_the_wrong_size_is_an_engine_failure():
    image, trimap = scene()
    region = JobRegion.around_unknown(image, trimap, 4)
    with pytest.raises(EngineError) as err:
        region.paste(np.zeros((3, 3, 3), np.float32), np.zeros((3, 3), np.float32), np.uint16)
    assert err.value.code == "engine_failed"


def test_outside_the_engine_a_job_copies_the_layer_once():
    """The counting test of docs/architecture.md: a 6-megapixel 16-bit job, from the received
    bytes to the result arrays, without the engine (its memory follows the crop). What is kept
    is the result itself (foreground at the layer's depth: 1 x the layer's bytes, alpha 1/3,
    trimap 1/6); the peak adds a few mask-sized temporaries and one distance tile."""
    h, w = 2000, 3000
    layer_bytes = h * w * 6
    yy, xx = np.ogrid[:h, :w]
    inside = np.hypot((yy - h / 2) / (h * 0.3), (xx - w / 2) / (w * 0.3)) < 1
    grey = (np.where(inside, 40000, 9000) + (yy * 7 + xx * 3) % 4000).astype("<u2")
    payload = np.repeat(grey[..., None], 3, axis=2)
    payload = payload.tobytes() + (inside.astype(np.uint8) * 255).tobytes()
    del inside, yy, xx, grey
    from drip_core.buffers import to_array
    view = memoryview(payload)
    tracemalloc.start()
    try:
        image = to_array(view[:layer_bytes], "rgb16", w, h)   # a view of the received bytes
        mask = to_array(view[layer_bytes:], "y8", w, h)
        trimap = trimaps.build("selection_band", mask, 12, image.shape)
        trimap_peak = tracemalloc.get_traced_memory()[1]
        region = JobRegion.around_unknown(image, trimap, margin=16)
        rh, rw = region.shape
        engine_fg, engine_alpha = np.zeros((rh, rw, 3), np.float32), np.zeros((rh, rw), np.float32)
        tracemalloc.reset_peak()
        before_paste = tracemalloc.get_traced_memory()[0]
        fg, alpha = region.paste(engine_fg, engine_alpha, np.uint16)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the selection band: the trimap, the selected-pixel mask and one halo tile's distances
    assert trimap_peak <= layer_bytes / 3 + 16e6, f"trimap peak {trimap_peak / 1e6:.0f} MB"
    result = fg.nbytes + alpha.nbytes
    assert result == layer_bytes * 4 // 3
    paste_extra = peak - before_paste - result
    # temporaries follow the crop (one boolean mask) and the unknown pixels (their float values)
    bound = rh * rw + 64 * int((trimap == 128).sum())
    assert paste_extra <= bound < 0.3 * layer_bytes, f"paste made {paste_extra / 1e6:.1f} MB of temporaries"
    assert kept - before_paste <= result * 1.01
