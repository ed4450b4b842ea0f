"""End to end in a REAL headless GIMP 3.0.4 (Debian trixie) and 3.2.6 (Debian forky).

One gimp-console start per GIMP version runs every scenario (tests/gimp/gimp_scenarios.py)
against a real drip-server on the host's loopback; the tests here check the dumps. The
reference alpha is what the same engine gives through the `drip-matte` command line on the
very pixels and trimap GIMP holds.

Needs root (chroot) and the cached roots: `sudo tests/gimp/build_roots.sh` first. Skips
with the reason otherwise. DRIP_GIMP_TESTS=0 turns them off.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

pytestmark = [pytest.mark.gimp, pytest.mark.slow]

WIDTH = 400  # the photo is scaled to this width in GIMP to keep the classical solve short


def tiny_drip_model(tmp: Path) -> Path | None:
    """A tiny random DRIP model folder, if the DRIP tooling exists in this checkout."""
    try:
        from drip_core.engines.drip.model.convert import convert_sd2
        from drip_core.engines.drip.testing import make_tiny_sd2
    except Exception:  # noqa: BLE001 - DRIP extras absent: the drip scenario is skipped
        return None
    sd2 = make_tiny_sd2(str(tmp / "tiny-sd2"))
    out = tmp / "tiny-drip"
    convert_sd2(sd2, str(out))
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """Made once for both GIMP versions (None when the DRIP tooling is absent or skipped)."""
    if os.environ.get("DRIP_GIMP_SKIP_DRIP") == "1" or all(harness.skip_reason(v) for v in harness.VERSIONS):
        return None
    return tiny_drip_model(tmp_path_factory.mktemp("tiny-drip"))


@pytest.fixture(scope="module", params=sorted(harness.VERSIONS))
def session(request, tmp_path_factory, tiny_model):
    version = request.param
    reason = harness.skip_reason(version)
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp(f"gimp{version}")
    params = {"width": WIDTH, "band": 8, "edit": 10, "cancel": True, "spawn": True}
    server_args, server_env = ["--engine", "auto", "--max-pixels", "450000"], {}
    if tiny_model is not None:
        model = tiny_model
        if model is not None:
            params["drip"] = True
            params["drip_width"] = 96
            server_args += ["--drip-model", str(model)]
            server_env["DRIP_MATTING_ALLOW_UNTRAINED"] = "1"
            params["drip_model_host"] = str(model)
    res = harness.gimp_session(version, params, server_args=server_args, server_env=server_env)
    res["_version"] = version
    res["_tmp"] = tmp
    if not res["scenarios"]:
        pytest.fail(f"GIMP {version} ran no scenario (rc {res['_returncode']}):\n{res['_output'][-4000:]}")
    return res


def scen(session, name) -> dict:
    d = session["scenarios"].get(name)
    assert d is not None, f"scenario {name} did not run:\n{session['_output'][-3000:]}"
    assert "exception" not in d, d["exception"]
    return d


def raw(session, name, shape, dtype=np.uint8) -> np.ndarray:
    data = (Path(session["_out"]) / name).read_bytes()
    return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("=")).reshape(shape)


def drip_matte(session, tag, image, trimap, engine="classical", extra_env=None, drip_model=None):
    """Reference: the `drip-matte` CLI (in-process engine) on the same pixels (at their own
    depth: 8/16-bit PNG, float TIFF) and trimap. Returns (alpha, foreground) at that depth."""
    from PIL import Image

    from drip_core.image_io import read_rgb, write
    tmp = session["_tmp"]
    ext = ".tif" if image.dtype == np.float32 else ".png"
    img_p, tri_p = tmp / f"{tag}_img{ext}", tmp / f"{tag}_tri.png"
    a_p, f_p = tmp / f"{tag}_ref_alpha{ext}", tmp / f"{tag}_ref_fg{ext}"
    write(str(img_p), image)
    Image.fromarray(trimap).save(tri_p)
    cmd = [sys.executable, "-m", "drip_core.cli", str(img_p), "--trimap", str(tri_p), "--engine", engine,
           "--alpha", str(a_p), "--foreground", str(f_p), "--quiet"]
    if drip_model:
        cmd += ["--drip-model", str(drip_model)]
    subprocess.run(cmd, check=True, cwd=harness.REPO, env={**os.environ, **(extra_env or {})}, timeout=600)
    return read_rgb(str(a_p))[:, :, 0], read_rgb(str(f_p))


SAMPLES = {8: ("u8", np.uint8, 255.0), 16: ("u16", "<u2", 65535.0), 32: ("float", "<f4", 1.0)}


def check_alpha_against_cli(session, tag, d, depth=8, grey=False, engine="classical", rerun=False, **kw):
    """The GIMP result against drip-matte on the same pixels: alpha within 1/255 everywhere.

    ``rerun``: the run re-solved a trimap edit locally from the server's cached image and result:
    alpha within mean 1/255 of the full solve of the edited trimap, the foreground within 1 on
    average. Not within a few grey levels everywhere any more (issue 13's bound): since issue 23
    the local re-solve keeps the previous result as its prior, so near the edit it may differ
    from a solve that starts from nothing."""
    x, y, w, h = d["roi_img"]
    _, dtype, full = SAMPLES[depth]
    src = raw(session, d["src_rgb"], (h, w, 3), dtype)
    scale = 255.0 / full  # compare in 8-bit units whatever the depth
    mask = raw(session, d["mask"], (h, w), dtype).astype(np.float64) * scale
    alpha_layer = raw(session, d["alpha_layer"], (h, w), dtype).astype(np.float64) * scale
    trimap = raw(session, d["trimap"], (h, w))
    assert set(np.unique(trimap)) <= {0, 128, 255}, "the stored trimap is not white/grey/black"
    assert (trimap == 128).any()
    ref_alpha, ref_fg = drip_matte(session, tag, np.ascontiguousarray(src), trimap, engine=engine, **kw)
    ref_alpha = ref_alpha.astype(np.float64) * scale
    diff = np.abs(mask - ref_alpha)
    diff2 = np.abs(alpha_layer - ref_alpha)
    if rerun:
        for name, dd in (("layer-mask alpha", diff), ("'Drip alpha'", diff2)):
            where = np.unravel_index(np.argmax(dd), dd.shape)
            assert dd.mean() <= 1.0, (
                f"{tag}: {name} differs from drip-matte by {dd.mean():.3f}/255 on average, "
                f"{dd.max():.2f}/255 at most (at row, column {where})")
    else:
        assert diff.max() <= 1.0 + 1e-9, \
            f"{tag}: layer-mask alpha differs from drip-matte by {diff.max():.2f}/255"
        assert diff2.max() <= 1.0 + 1e-9, \
            f"{tag}: 'Drip alpha' differs from drip-matte by {diff2.max():.2f}/255"
    if depth == 8 and not grey:
        fg = raw(session, d["fg_rgb"], (h, w, 3)).astype(int)
        sel = ref_alpha > 0
        fdiff = np.abs(fg - ref_fg.astype(int))[sel]
        if rerun:
            assert fdiff.mean() <= 1.0, \
                f"{tag}: foreground colours differ from drip-matte by {fdiff.mean():.2f} on average"
        else:
            assert fdiff.max() <= 1, f"{tag}: foreground colours differ from drip-matte by {fdiff.max()}"
    return ref_alpha, trimap


def layer_names(tree):
    return [lyr["name"] for lyr in tree["layers"]]


def trimap_channels(tree):
    """The layers that have a "Drip trimap: <layer>" channel, in the channel list's order."""
    return [c.split(": ", 1)[1] for c in tree["channels"] if c.startswith("Drip trimap: ")]


# ----------------------------------------------------------------------------------------

def test_gimp_version(session):
    expect = harness.VERSIONS[session["_version"]]["expect"]
    assert session["gimp_version"] == expect, \
        f"expected GIMP {expect}, the root has {session['gimp_version']}"


def test_basic_layers_pixels_and_source_untouched(session):
    d = scen(session, "basic")
    assert d["run"]["status"] == "success", d["run"]
    names = layer_names(d["tree"])
    assert names == ["Drip foreground (Background)", "Drip alpha (Background)", "Background"], names
    assert layer_names(d["tree_before"]) == ["Background"]
    fg = d["tree"]["layers"][0]
    assert fg["has_mask"] and not d["tree"]["layers"][1]["has_mask"]
    assert trimap_channels(d["tree"]) == ["Background"]
    assert d["src_crc_before"] == d["src_crc_after"], "the source layer was modified"
    check_alpha_against_cli(session, "basic", d)


def test_refine_with_edited_trimap_updates_in_place(session):
    first = scen(session, "basic")
    d = scen(session, "refine")
    assert d["run"]["status"] == "success", d["run"]
    # Same layers (same ids), no new ones piled up, source untouched.
    assert d["ids_before"] == d["ids_after"], (d["ids_before"], d["ids_after"])
    assert layer_names(d["tree"]) == ["Drip foreground (Background)", "Drip alpha (Background)", "Background"]
    assert d["src_crc_after"] == first["src_crc_before"]
    assert d["roi_img"] == first["roi_img"]
    # The in-place update lifts the selection for its undoable merge and puts it back.
    assert d["tree"]["selection"] == first["tree"]["selection"]
    new_alpha, trimap = check_alpha_against_cli(session, "refine", d, rerun=True)
    x, y, w, h = d["roi_img"]
    old = raw(session, first["mask"], (h, w)).astype(int)
    new = raw(session, d["mask"], (h, w)).astype(int)
    ex, ey, ew, eh = d["edit_rect"]
    # the full solve of the edited trimap, against this rerun and against the first run, beyond
    # a local re-solve's neighbourhood (printed: the rerun keeps the previous result there)
    from drip_core.engines.classical.rerun import REACH
    beyond = np.ones((h, w), bool)
    beyond[max(ey - REACH, 0):ey + eh + REACH, max(ex - REACH, 0):ex + ew + REACH] = False
    print(f"refine rerun vs full solve: max {np.abs(new - new_alpha).max():.0f}/255 "
          f"(beyond {REACH} px of the edit: {np.abs(new - new_alpha)[beyond].max():.0f}); "
          f"first run vs full solve beyond: {np.abs(old - new_alpha)[beyond].max():.0f}/255")
    # The edited square is now foreground, and the result changed there...
    assert (trimap[ey:ey + eh, ex:ex + ew] == 255).all()
    assert (new[ey:ey + eh, ex:ex + ew] == 255).all()
    assert (old[ey:ey + eh, ex:ex + ew] != new[ey:ey + eh, ex:ex + ew]).any()
    # ...and mostly near it. The v2 classical engine's information flow draws on known pixels of
    # similar colour anywhere in the region, so a new white patch may nudge far pixels too; those
    # changes must stay small on average.
    diff = np.abs(new - old)
    assert (diff > 2).any()
    near = 40
    outside = np.ones_like(diff, bool)
    outside[max(ey - near, 0):ey + eh + near, max(ex - near, 0):ex + ew + near] = False
    far = diff[outside & (trimap == 128)]
    assert far.mean() <= 2.0, (f"the rerun changed alpha by {far.mean():.2f}/255 on average beyond {near} px "
                               f"from the edit (max {far.max()}, {(far > 2).sum()} of {far.size} pixels > 2)")


def test_refine_sends_no_pixels(session):
    """Issue 13: the rerun after painting on the "Drip trimap" channel named its image by digest
    (the server held it from the first run) and sent no pixels; issue 23: it is re-solved
    locally, on a small layer too."""
    scen(session, "refine")
    done = server_done_lines(session)
    assert any("local run, image from the cache" in line for line in done), "\n".join(done)


def test_rerun_from_selection_reuses_the_drip_layers(session):
    d = scen(session, "rerun_selection")
    assert d["run"]["status"] == "success", d["run"]
    assert layer_names(d["tree"]) == ["Drip foreground (Background)", "Drip alpha (Background)", "Background"]
    assert trimap_channels(d["tree"]) == ["Background"]
    assert d["ids_after"]["Background"] == d["ids_before"]["Background"]
    fg = d["tree"]["layers"][0]
    # the ellipse's region (100, 60, 120x90 + band 6 + margin 32) lies inside the region the Drip
    # layers already hold: that one is sent again, so the server finds its pixels in its cache
    basic = scen(session, "basic")
    x, y, w, h = basic["roi_img"]
    assert x <= 100 - 38 and y <= 60 - 38 and x + w >= 220 + 38 and y + h >= 150 + 38
    assert fg["offsets"] == [x, y] and fg["size"] == [w, h], fg
    assert d["tree"]["layers"][1]["size"] == fg["size"]


def test_layer_with_offsets_and_alpha(session):
    d = scen(session, "offsets_alpha")
    assert d["run"]["status"] == "success", d["run"]
    ox, oy = d["layer_offsets"]
    fg = d["tree"]["layers"][0]
    assert fg["name"] == "Drip foreground (Background)" and fg["has_alpha"] and fg["has_mask"]
    rx, ry, rw, rh = d["roi_layer"]
    assert fg["offsets"] == [ox + rx, oy + ry]
    assert d["alpha_offsets"][:2] == [ox + rx, oy + ry]
    assert d["fg_alpha_values"] == [255], "the foreground layer should keep the source's (opaque) alpha"
    assert d["src_crc_before"] == d["src_crc_after"]
    # made as a copy of the source inside GIMP, the result still has a new layer's properties
    assert d["fg_props"] == [100.0, True, True] and d["src_props"] == [60.0, True]
    check_alpha_against_cli(session, "offsets", d)


def check_full_precision(session, d, depth, known_tolerance):
    """Known foreground comes back as the layer's own samples; unknown alpha has > 256 levels."""
    x, y, w, h = d["roi_img"]
    _, dtype, full = SAMPLES[depth]
    src = raw(session, d["src_rgb"], (h, w, 3), dtype).astype(np.float64)
    fg = raw(session, d["fg_rgb"], (h, w, 3), dtype).astype(np.float64)
    mask = raw(session, d["mask"], (h, w), dtype).astype(np.float64)
    trimap = raw(session, d["trimap"], (h, w))
    known = trimap == 255
    assert known.any()
    assert np.abs(fg[known] - src[known]).max() <= known_tolerance, "known foreground was not returned as is"
    levels = np.unique(mask[trimap == 128])
    assert levels.size > 256, f"unknown alpha has only {levels.size} levels: cut to 8 bits somewhere"
    return src, full


def test_16bit_image(session):
    d = scen(session, "deep16")
    assert d["run"]["status"] == "success", d["run"]
    assert d["precision"] == "u16-non-linear"
    assert d["src_crc_before"] == d["src_crc_after"]
    src, _ = check_full_precision(session, d, 16, known_tolerance=0)  # bit-exact
    assert (src % 257 != 0).mean() > 0.5, "the test photo is not real 16-bit data"
    check_alpha_against_cli(session, "deep16", d, depth=16)


def test_32bit_float_linear_image(session):
    d = scen(session, "float32")
    assert d["run"]["status"] == "success", d["run"]
    assert d["precision"] == "float-linear"
    assert d["src_crc_before"] == d["src_crc_after"]
    # exact but for babl's linear <-> perceptual round trip of the stored floats
    check_full_precision(session, d, 32, known_tolerance=1e-5)
    check_alpha_against_cli(session, "float32", d, depth=32)


def test_feathered_selection_and_alpha_as_selection(session):
    d = scen(session, "feathered_all_outputs")
    assert d["run"]["status"] == "success", d["run"]
    ref_alpha, trimap = check_alpha_against_cli(session, "feathered", d)
    x, y, w, h = d["roi_img"]
    sel = raw(session, d["selection"], (h, w)).astype(int)
    assert np.abs(sel - ref_alpha.astype(int)).max() <= 1, "the new selection is not the alpha"


def test_layer_inside_a_group(session):
    d = scen(session, "in_group")
    assert d["run"]["status"] == "success", d["run"]
    assert d["top"] == ["Group"], d["top"]
    assert d["children"] == ["Drip foreground (Background)", "Drip alpha (Background)", "Background"], \
        d["children"]


def test_grey_image(session):
    d = scen(session, "grey")
    assert d["run"]["status"] == "success", d["run"]
    assert all(lyr["grey"] for lyr in d["tree"]["layers"])
    assert layer_names(d["tree"]) == ["Drip foreground (Background)", "Drip alpha (Background)", "Background"]
    check_alpha_against_cli(session, "grey", d, grey=True)


def test_empty_selection_is_a_message_not_layers(session):
    d = scen(session, "empty_selection")
    assert d["run"]["status"] == "execution-error"
    assert "select" in d["run"]["message"].lower()
    assert "Traceback" not in d["run"]["message"]
    assert d["tree_before"] == d["tree_after"]


def test_server_down_is_a_message_and_no_new_layers(session):
    d = scen(session, "server_down")
    assert d["run"]["status"] == "execution-error", d["run"]
    msg = d["run"]["message"]
    assert "server" in msg.lower() and "Server log:" in msg, msg
    assert "Traceback" not in msg and "Traceback" not in session["_output"]
    assert d["tree_before"] == d["tree_after"]


def test_tiny_drip_engine(session):
    d = scen(session, "drip_engine")
    if "skipped" in d:
        pytest.skip(f"tiny DRIP scenario not run: {d['skipped']} "
                    "(drip_core.engines.drip.testing/convert unavailable?)")
    assert d["run"]["status"] == "success", d["run"]
    check_alpha_against_cli(session, "drip", d, engine="drip",
                            extra_env={"DRIP_MATTING_ALLOW_UNTRAINED": "1"},
                            drip_model=session["_params"]["drip_model_host"])


def test_missing_trimap_channel_is_a_message(session):
    d = scen(session, "no_trimap_channel")
    assert d["run"]["status"] == "execution-error"
    assert "Drip trimap" in d["run"]["message"] and "selection band" in d["run"]["message"]
    assert d["tree_before"] == d["tree_after"]


def test_cancel_kills_the_plugin_and_the_server_cancels_the_job(session):
    d = scen(session, "cancel")
    rep = session.get("_cancel", {})
    assert "error" not in rep, rep
    assert rep.get("killed"), f"no drip_matting.py process was found to kill: {rep}"
    assert rep.get("server_cancelled") is True, rep
    assert d["run"]["status"] != "success"
    assert d["tree_after"] == d["tree_before"], "a cancelled run must not add anything"


def test_image_too_large_is_a_message(session):
    d = scen(session, "too_large")
    assert d["run"]["status"] == "execution-error", d["run"]
    msg = d["run"]["message"]
    assert "exceeds the server's limit" in msg and "smaller region" in msg, msg
    assert d["tree_before"] == d["tree_after"]


def test_wrong_token_is_a_message(session):
    d = scen(session, "wrong_token")
    assert d["run"]["status"] == "execution-error", d["run"]
    msg = d["run"]["message"]
    assert "token" in msg.lower() and "restart the server" in msg, msg
    assert d["tree_before"] == d["tree_after"]


def test_no_server_running_the_plugin_starts_one(session):
    d = scen(session, "spawn")
    if "skipped" in d:
        pytest.skip(f"spawn scenario not run: {d['skipped']}")
    assert d["run"]["status"] == "success", d["run"]
    assert d["new_pid"] != d["old_pid"] and d["spawned_alive"]
    assert layer_names(d["tree"]) == ["Drip foreground (Background)", "Drip alpha (Background)", "Background"]


def test_progress_shows_the_servers_stages(session):
    out = session["_output"]
    assert "progress display failed" not in out
    lines = [line for line in out.splitlines() if line.startswith("drip-matting progress:")]
    texts = " | ".join(lines)
    for stage in ("reading the layer", "connecting to the server", "computing alpha", "estimating foreground",
                  "adding layers", "done"):
        assert stage in texts, f"no progress text with {stage!r}: {texts[:2000]}"
    if "drip" in session["_params"]:
        assert "loading model" in texts and "step " in texts, texts[-2000:]


# ---------------------------------------------------------------------- the photographer's loop

def server_done_lines(session):
    log = (Path(session["_work"]) / "server.log").read_text(errors="replace")
    return [line for line in log.splitlines() if " done: " in line]


def test_after_a_run_the_trimap_is_ready_to_paint(session):
    """Issue 23: no selection left to clip the brush (it is kept as a channel), the trimap shown
    and selected, the source hidden under the cut-out."""
    d = scen(session, "workflow_loop")
    assert d["r1"]["status"] == "success", d["r1"]
    a = d["after1"]
    assert a["selected"] == ["Drip trimap: Background"], "the trimap channel should be selected to paint on"
    assert a["selection_empty"], "the selection would clip a brush on the trimap"
    assert "Drip selection: Background" in a["channels"], "the lifted selection should be kept as a channel"
    assert a["trimap_visible"] is True
    assert a["visible"]["Background"] is False and a["visible"]["Drip foreground (Background)"] is True


def test_the_refine_loop_never_trips(session):
    """Each run started from whatever is selected after the previous one: a script's rerun with
    another band radius uses the saved selection; Repeat after painting uses the painted trimap,
    without sending the image again; Repeat after a new selection follows the selection; Repeat
    when both changed is a message and changes nothing."""
    d = scen(session, "workflow_loop")
    assert d["r2"]["status"] == "success", d["r2"]
    assert d["after2"]["trimap_crc"] != d["after1"]["trimap_crc"], "band 14 should give another trimap"
    assert d["r3"]["status"] == "success", d["r3"]
    assert d["after3"]["selected"] == ["Drip trimap: Background"]
    assert d["r4"]["status"] == "success", d["r4"]
    assert d["after4"]["trimap_crc"] not in (d["after3"]["trimap_crc"], d["after2"]["trimap_crc"]), \
        "Repeat after a new selection should follow the selection"
    assert d["after4"]["selection_empty"]
    assert d["r5"]["status"] == "cancel", d["r5"]
    assert d["tree5_same"], "a run that stopped for a message changed the image"
    done = server_done_lines(session)
    # the loop's image (its own size) only travelled with its first run
    loop_jobs = [line for line in done if f"{d['region'][2]}x{d['region'][3]}" in line]
    assert len(loop_jobs) >= 4 and all("image from the cache" in line for line in loop_jobs[1:]), \
        "\n".join(loop_jobs)


def test_a_painted_rerun_changes_only_what_is_near_the_paint(session):
    d = scen(session, "workflow_loop")
    assert d["r3b"]["status"] == "success", d["r3b"]
    x, y, w, h = d["region"]
    before = raw(session, d["alpha_before"], (h, w)).astype(int)
    after = raw(session, d["alpha_after"], (h, w)).astype(int)
    dab = np.zeros((h, w), bool)
    dx, dy, dw, dh = d["dab"]
    dab[dy:dy + dh, dx:dx + dw] = True
    from scipy import ndimage
    far = ndimage.distance_transform_edt(~dab) > 100
    assert far.any() and (after != before)[dab].any(), "the white dab changed nothing"
    assert np.abs(after - before)[far].max() <= 2, "the rerun changed pixels far from the dab"
    loop_jobs = [line for line in server_done_lines(session) if f"{w}x{h}" in line]
    assert any("local run" in line for line in loop_jobs), "\n".join(loop_jobs)


def test_a_soft_brush_stroke_with_gaps_means_unsure(session):
    """Grey 200 is not white: the stroke's pixels stay unknown and get real alpha values,
    instead of being rounded to object (255) as before."""
    d = scen(session, "workflow_loop")
    assert d["stroke_pixels"] > 50
    values = d["stroke_alpha"]
    assert values != [255] and len(values) > 3, values


def test_each_layer_has_its_own_trimap(session):
    d = scen(session, "two_layers")
    assert d["r1"]["status"] == "success" and d["r2"]["status"] == "success", (d["r1"], d["r2"])
    assert sorted(trimap_channels(d["tree"])) == ["First", "Second"]
    assert d["crc_before"] is not None and d["crc_before"] == d["crc_after"], \
        "the first layer's trimap was overwritten"
    names = layer_names(d["tree"])
    assert sum(n.startswith("Drip foreground") for n in names) == 2, names


def test_edge_controls_from_a_script_grow_the_mask_without_matting_again(session):
    d = scen(session, "edge_controls")
    assert d["plain"]["status"] == "success" and d["run"]["status"] == "success", d
    assert d["before"]["roi_img"] == d["after"]["roi_img"]
    shape = tuple(d["before"]["roi_img"][3:1:-1])
    before, after = (raw(session, d[k]["mask"], shape) for k in ("before", "after"))
    assert (after >= 128).sum() > (before >= 128).sum() + 200, "Shift edge 4 px did not grow the mask"
    log = (Path(session["_work"]) / "server.log").read_text(errors="replace")
    assert "unchanged run" in log, "changing only the edge controls ran the matting again"


def test_the_default_is_the_smart_band(session):
    d = scen(session, "smart_band_default")
    assert d["run"]["status"] == "success", d["run"]
    x, y, w, h = d["roi_img"]
    trimap = raw(session, d["trimap"], (h, w))
    assert (trimap == 128).any() and (trimap == 255).any() and (trimap == 0).any()
    # not the fixed band: the smart band's trimap differs from the 8-px band's on the same selection
    basic = scen(session, "basic")
    if basic["roi_img"] == d["roi_img"]:
        assert (raw(session, basic["trimap"], (h, w)) != trimap).any()
    check_alpha_against_cli(session, "smart", d)
