"""The GIMP plug-in's GIMP-free logic (gimp_plugin/drip_matting/plugin_logic.py), on the host.

The plug-in imports ``drip_protocol`` by name (the installer ships the package beside it);
here it is the same package from the tree.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import drip_protocol

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIR = REPO / "gimp_plugin" / "drip_matting"
sys.path.insert(0, str(PLUGIN_DIR))

import dialog_rules as rules  # noqa: E402
import plugin_logic as logic  # noqa: E402

from drip_protocol import ProtocolError  # noqa: E402

# ---------------------------------------------------------------------------- geometry


def test_selection_roi_grows_by_band_and_margin_and_clips_to_layer():
    # selection (image coords) 100..200 x 50..80, band 10, margin 32, layer at offset 0
    roi = logic.selection_roi((100, 50, 200, 80), 10, (0, 0), (1000, 1000), margin=32)
    assert roi == (58, 8, 184, 114)
    # clipped at the layer's top-left
    assert logic.selection_roi((5, 5, 20, 20), 10, (0, 0), (1000, 1000), margin=32) == (0, 0, 62, 62)
    # clipped at the bottom-right
    assert logic.selection_roi((90, 90, 100, 100), 4, (0, 0), (100, 100), margin=2) == (84, 84, 16, 16)


def test_roi_handles_layer_offsets():
    # layer placed at (300, 200) in the image; selection in image coordinates
    roi = logic.roi_from_bounds((350, 260, 400, 300), 10, (300, 200), (500, 400))
    assert roi == (40, 50, 70, 60)
    # negative offsets (layer sticks out top-left of the canvas)
    assert logic.roi_from_bounds((0, 0, 10, 10), 0, (-20, -30), (100, 100)) == (20, 30, 10, 10)


def test_roi_outside_the_layer_is_none():
    assert logic.roi_from_bounds((0, 0, 10, 10), 5, (100, 100), (50, 50)) is None
    assert logic.roi_from_bounds((500, 500, 600, 600), 5, (0, 0), (50, 50)) is None


def test_nonzero_bounds():
    w, h = 7, 5
    data = bytearray(w * h)
    assert logic.nonzero_bounds(bytes(data), w, h) is None
    data[1 * w + 2] = 128
    data[3 * w + 5] = 255
    assert logic.nonzero_bounds(bytes(data), w, h) == (2, 1, 6, 4)
    with pytest.raises(ValueError):
        logic.nonzero_bounds(b"\0" * 3, w, h)


def test_nonzero_bounds_matches_numpy_on_random_masks():
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    for _ in range(20):
        h, w = rng.integers(1, 40, 2)
        m = (rng.random((h, w)) > 0.97).astype(np.uint8) * 128
        got = logic.nonzero_bounds(m.tobytes(), int(w), int(h))
        ys, xs = np.nonzero(m)
        want = None if len(xs) == 0 else (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert got == (None if want is None else tuple(int(v) for v in want))


def test_crop_rect():
    w, h = 6, 4
    src = bytes(range(w * h * 2))  # 2 bytes per pixel: pixel (x, y) starts at byte (y * w + x) * 2
    block = logic.crop_rect(src, w, (2, 1, 3, 2), bpp=2)
    assert block == src[16:22] + src[28:34]


# ---------------------------------------------------------------------------- pixels


@pytest.mark.parametrize("typecode, sample_bytes", [("B", 1), ("H", 2), ("f", 4)])
def test_split_and_merge_alpha_round_trip(typecode, sample_bytes):
    import array
    w, h = 5, 3
    rnd = random.Random(1)
    samples = [rnd.random() if typecode == "f" else rnd.randrange(256 ** sample_bytes)
               for _ in range(w * h * 4)]
    rgba = array.array(typecode, samples).tobytes()
    rgb, a = logic.split_alpha(rgba, w, h, typecode)
    assert len(rgb) == w * h * 3 * sample_bytes and len(a) == w * h * sample_bytes
    assert logic.merge_alpha(rgb, a, w, h, typecode) == rgba
    # pixel 0: first three samples are RGB, the fourth alpha
    s = sample_bytes
    assert rgb[:3 * s] == rgba[:3 * s] and a[:s] == rgba[3 * s:4 * s]


def test_merge_alpha_checks_sizes():
    with pytest.raises(ValueError):
        logic.merge_alpha(b"\0" * 5, b"\0" * 2, 2, 1, "B")


def test_precision_info():
    p8 = logic.precision_info("u8-non-linear")
    assert p8["depth"] == 8 and p8["rgb"] == "R'G'B' u8" and p8["mask"] == "Y' u8"
    assert p8["wire_format"] == "rgb8"
    p16 = logic.precision_info("u16-linear")
    assert p16["depth"] == 16 and p16["rgba"] == "R'G'B'A u16" and p16["mask"] == "Y u16"
    assert p16["mask8"] == "Y u8" and p16["trimap"] == "Y' u8" and p16["wire_format"] == "rgb16"
    for nick in ("float-perceptual", "half-linear", "u32-non-linear", "double-linear"):
        pf = logic.precision_info(nick)  # deeper than 16 bits travels as float, not cut to 16
        assert pf["depth"] == 32 and pf["rgb"] == "R'G'B' float" and pf["wire_format"] == "rgbf32"
    assert logic.precision_info("float-perceptual")["mask"] == "Y~ float"


def test_little_endian_helper_is_identity_on_little_endian_hosts():
    data = bytes([1, 2, 3, 4])
    if sys.byteorder == "little":
        assert logic.to_little_endian(data, "H") == data


# ---------------------------------------------------------------------------- arguments


def test_parse_server_arg():
    assert logic.parse_server_arg("auto") is None
    assert logic.parse_server_arg("") is None
    assert logic.parse_server_arg(" AUTO ") is None
    assert logic.parse_server_arg("127.0.0.1:47001") == ("127.0.0.1", 47001)
    assert logic.parse_server_arg("[::1]:5000") == ("::1", 5000)
    for bad in ("localhost", "host:", ":80", "host:99999", "host:x"):
        with pytest.raises(ProtocolError) as e:
            logic.parse_server_arg(bad)
        assert e.value.code == "bad_server_arg"
        assert "host:port" in e.value.user_text()


def test_build_job_is_a_valid_protocol_job():
    job = logic.build_job(40, 30, 16, "selection-band", 12, "classical")
    checked = drip_protocol.JobSpec.from_header(job.to_header(), 10**6)
    assert checked.trimap_source == "selection_band" and checked.want_trimap is True
    assert checked.image_format == "rgb16" and checked.result_depth == 16
    assert checked.payload_len == 40 * 30 * 6 + 40 * 30
    assert logic.build_job(4, 4, 8, "trimap-channel", 1, "auto").trimap_source == "trimap"
    assert logic.build_job(4, 4, 8, "feathered-selection", 1, "drip").trimap_source == "feathered"
    with pytest.raises(ProtocolError):
        logic.build_job(4, 4, 8, "nonsense", 1, "auto")


def test_argument_names_match_the_plugin_registration():
    src = (PLUGIN_DIR / "drip_matting.py").read_text()
    for name in logic.DIALOG_FIELDS:
        if name not in rules.PREVIEW_FIELDS:  # the preview's switches are the dialog's own widgets
            assert f'"{name}"' in src, name
    for nick in list(logic.TRIMAP_SOURCES) + list(logic.OUTPUTS):
        assert f'"{nick}"' in src, nick
    assert "rules.engine_choices(" in src  # the engine nicks come from there (checked in its own test)
    assert "logic.PROC_NAME" in src and logic.PROC_NAME == "plug-in-drip-matting"


# ---------------------------------------------------------------------------- messages


def test_user_message_for_protocol_errors_has_hint_and_log():
    err = ProtocolError("out_of_memory", "the engine ran out of memory")
    text = logic.user_message(err, "/var/log/drip.log")
    assert text.startswith("Drip Matting: the engine ran out of memory.")
    assert "smaller region" in text and text.endswith("Server log: /var/log/drip.log.")
    assert "Traceback" not in text


@pytest.mark.parametrize("code", ["no_server", "auth_failed", "model_missing", "out_of_memory", "too_large",
                                  "empty_selection", "no_unknown"])
def test_every_listed_failure_says_what_to_do(code):
    text = logic.user_message(ProtocolError(code, "x"))
    assert len(text) > 40 and drip_protocol.ERROR_HINTS[code] in text


def test_message_is_not_said_twice():
    err = ProtocolError("model_missing", "no DRIP model is configured", log_file="/l.log")
    text = logic.user_message(err)
    assert text.lower().count("no drip model is configured") == 1
    assert "classical" in text and text.endswith(".")
    assert "/l.log" not in text  # the log does not explain a missing model: not named


def test_local_errors_have_hints():
    for code in logic.LOCAL_HINTS:
        text = logic.make_error(code, "something").user_text()
        assert logic.LOCAL_HINTS[code] in text


def test_unexpected_exception_is_one_line_without_traceback():
    text = logic.user_message(KeyError("boom"), "/tmp/server.log")
    assert "KeyError" in text and "/tmp/server.log" in text and "\n" not in text


def test_progress_text_and_fraction():
    assert logic.progress_text("loading model", "loading the drip engine") == \
        "Drip Matting: loading model (loading the drip engine)"
    assert logic.progress_text("denoising", "tile 2/4, step 3/10") == \
        "Drip Matting: refining (tile 2/4, step 3/10)"
    assert logic.progress_text("foreground") == "Drip Matting: estimating foreground"
    assert logic.progress_text("preparing", "building the trimap") == "Drip Matting: building the trimap"
    assert logic.progress_text("queued", "starting") == "Drip Matting: job accepted"
    assert logic.progress_text("queued", "waiting for 2 job(s) ahead") == \
        "Drip Matting: waiting for the server (waiting for 2 job(s) ahead)"
    assert "server" not in logic.progress_text("starting", "classical engine")
    assert logic.overall_fraction(0) == pytest.approx(logic.SERVER_SPAN[0])
    assert logic.overall_fraction(2) == pytest.approx(logic.SERVER_SPAN[1])


def test_every_server_stage_has_plugin_text():
    # one text per stage, and none for a stage nobody sends
    assert set(logic.STAGE_TEXT) == set(drip_protocol.Stage)
    fallback = f"Drip Matting: {logic.UNKNOWN_STAGE_TEXT}"
    for stage in drip_protocol.Stage:
        for message in ("", "step 1/2"):
            text = logic.progress_text(stage.value, message)
            assert not text.startswith(fallback), (stage, message, text)
            assert text == logic.progress_text(stage, message)  # the member or its wire value alike


def test_progress_text_of_an_unknown_stage_is_graceful():
    # a newer server's stage: shown as it is named, never an error
    assert logic.progress_text("step 3/10", "denoising") == "Drip Matting: working (step 3/10: denoising)"
    assert logic.progress_text("polishing_edges") == "Drip Matting: working (polishing edges)"
    assert logic.progress_text("", "halfway") == "Drip Matting: working (halfway)"
    assert logic.progress_text("", "") == "Drip Matting: working"
    assert logic.progress_text(None, None) == "Drip Matting: working"
    assert len(logic.progress_text("x" * 10_000)) < 80


# ---------------------------------------------------------------------------- config and discovery


def test_load_config_and_discovery_resolution(tmp_path):
    assert logic.load_config(str(tmp_path)) == {}
    (tmp_path / logic.CONFIG_NAME).write_text("not json")
    assert logic.load_config(str(tmp_path)) == {}
    cfg = {"server_command": ["x"], "discovery_file": "/cfg/server.json", "log_file": "/cfg/server.log"}
    (tmp_path / logic.CONFIG_NAME).write_text(json.dumps(cfg))
    assert logic.load_config(str(tmp_path)) == cfg
    assert logic.discovery_file(cfg, {}) == "/cfg/server.json"
    assert logic.discovery_file(cfg, {"DRIP_MATTING_SERVER_FILE": "/env/s.json"}) == "/env/s.json"
    assert logic.discovery_file({}, {}).endswith(os.path.join("drip-matting", "server.json"))
    assert logic.log_file_hint(cfg, {}) == "/cfg/server.log"
    # the running server's own record names the log it really writes
    record = tmp_path / "server.json"
    drip_protocol.write_discovery(str(record), {"host": "127.0.0.1", "port": 1, "token": "t" * 64, "pid": 1,
                                                "proto": 3, "log_file": "/real/server.log"})
    assert logic.log_file_hint(cfg, {"DRIP_MATTING_SERVER_FILE": str(record)}) == "/real/server.log"


def test_installed_folder_is_stdlib_only_and_importable_by_a_plain_python(tmp_path):
    from installer.plugin_files import install_plugin_folder, plugin_config
    folder = install_plugin_folder(tmp_path / "plug-ins", plugin_config(["drip-server"]))
    shipped = {p.relative_to(folder / "drip_protocol").as_posix(): p.read_bytes()
               for p in (folder / "drip_protocol").rglob("*.py")}
    tree = {p.relative_to(REPO / "drip_protocol").as_posix(): p.read_bytes()
            for p in (REPO / "drip_protocol").rglob("*.py")}
    assert shipped == tree and "__init__.py" in tree  # exactly the package from the tree
    assert not (folder / "protocol.py").exists()
    assert os.access(folder / "drip_matting.py", os.X_OK)
    assert (folder / "drip_matting.py").read_text().startswith("#!/usr/bin/env python3\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import plugin_logic; "
            "bad = [m for m in ('numpy', 'PIL', 'torch', 'scipy', 'drip_core') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    # -I: isolated, no user site, no PYTHONPATH; -S: no site-packages at all
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(folder)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    subprocess.run([sys.executable, "-m", "py_compile", str(folder / "drip_matting.py")], check=True)


def test_no_second_copy_of_protocol_in_git():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    assert not [f for f in files if f.rsplit("/", 1)[-1] == "protocol.py"]  # no second copy anywhere
    assert "drip_protocol/__init__.py" in files


# ---------------------------------------------------------------------------- connecting


def _job_bytes(w, h):
    img = bytearray(w * h * 3)
    for i in range(w * h):
        x = i % w
        img[3 * i:3 * i + 3] = bytes([200, 60, 30]) if x < w // 2 else bytes([20, 90, 220])
    sel = bytes(255 if (i % w) < w // 2 else 0 for i in range(w * h))
    return bytes(img), sel


def test_connect_auto_uses_the_discovery_file_and_runs_a_job(server):
    env = {"DRIP_MATTING_SERVER_FILE": str(server.discovery)}
    conn = logic.connect("auto", {}, environ=env)
    try:
        w, h = 24, 16
        img, sel = _job_bytes(w, h)
        job = logic.build_job(w, h, 8, "selection-band", 3, "classical")
        stages = []
        out = conn.run_job(job, img, sel, lambda f, s, m: stages.append(s) and False)
    finally:
        conn.close()
    assert len(out["alpha"]) == w * h and len(out["foreground"]) == w * h * 3 and len(out["trimap"]) == w * h
    assert set(out["trimap"]) <= {0, 128, 255} and 128 in set(out["trimap"])
    assert stages


def test_connect_host_port_takes_the_token_from_the_discovery_file(server):
    host, port = server.address
    env = {"DRIP_MATTING_SERVER_FILE": str(server.discovery)}
    conn = logic.connect(f"{host}:{port}", {}, environ=env)
    conn.close()
    # another port: no token known
    with pytest.raises(ProtocolError) as e:
        logic.connect(f"{host}:{port + 1 if port < 65535 else port - 1}", {}, environ=env)
    assert e.value.code == "no_token"
    # an explicit wrong token is refused by the server
    with pytest.raises(ProtocolError) as e:
        logic.connect(f"{host}:{port}", {}, environ={**env, "DRIP_MATTING_TOKEN": "wrong"})
    assert e.value.code == "auth_failed" and "token" in logic.user_message(e.value).lower()


def test_no_server_and_no_command(tmp_path):
    with pytest.raises(ProtocolError) as e:
        logic.connect("auto", {"log_file": "/x/server.log"},
                      environ={"DRIP_MATTING_SERVER_FILE": str(tmp_path / "s.json")})
    assert e.value.code == "no_server"
    assert "Server log: /x/server.log" in logic.user_message(e.value)


def test_no_server_and_the_command_fails(tmp_path):
    cfg = {"server_command": [sys.executable, "-c", "import sys; sys.exit(3)"],
           "log_file": str(tmp_path / "l.log")}
    with pytest.raises(ProtocolError) as e:
        logic.connect("auto", cfg, environ={"DRIP_MATTING_SERVER_FILE": str(tmp_path / "s.json")},
                      spawn_wait=20)
    assert e.value.code == "no_server" and "exit code 3" in e.value.message
    assert str(tmp_path / "l.log") in logic.user_message(e.value)


def test_no_server_starts_one_with_the_configured_command(tmp_path):
    disc = tmp_path / "s.json"
    cfg = {"server_command": [sys.executable, "-m", "drip_core.server", "--engine", "classical",
                              "--idle-timeout", "60"],
           "log_file": str(tmp_path / "server.log")}
    waits = []
    env = {"DRIP_MATTING_SERVER_FILE": str(disc)}
    cwd = os.getcwd()
    os.chdir(REPO)  # the spawned `python -m drip_core.server` must find the package
    try:
        conn = logic.connect("auto", cfg, environ=env, on_wait=waits.append, spawn_wait=60)
    finally:
        os.chdir(cwd)
    try:
        assert disc.exists() and conn.server_info["type"] == "welcome"
        assert waits, "on_wait was never called while the server started"
        conn.request({"type": "shutdown"})
    finally:
        conn.close()


def test_host_port_over_tls(server_factory, tmp_path):
    from test_tls import make_cert
    cert, key = make_cert(tmp_path)
    srv = server_factory("--tls-cert", str(cert), "--tls-key", str(key))
    host, port = srv.address
    # the discovery file says TLS (and names the certificate): verified connection
    conn = logic.connect(f"{host}:{port}", {}, environ={"DRIP_MATTING_SERVER_FILE": str(srv.discovery)})
    conn.close()
    # no discovery file for it: token and CA from the environment
    env = {"DRIP_MATTING_SERVER_FILE": str(tmp_path / "none.json"), "DRIP_MATTING_TOKEN": srv.record["token"],
           "DRIP_MATTING_TLS_CA": str(cert)}
    logic.connect(f"{host}:{port}", {}, environ=env).close()
    # plain TCP to a TLS server fails with a message, not a hang or a traceback
    env.pop("DRIP_MATTING_TLS_CA")
    with pytest.raises(ProtocolError) as e:
        logic.connect(f"{host}:{port}", {}, environ=env)
    assert "Traceback" not in logic.user_message(e.value)


# ---------------------------------------------------------------------------- refine loop

def test_each_layer_has_its_own_trimap_channel_name():
    assert logic.trimap_channel_name("Portrait") == "Drip trimap: Portrait"
    assert logic.trimap_channel_name("a") != logic.trimap_channel_name("b")


def test_source_parasite_round_trip():
    data = logic.source_parasite_data(42)
    assert logic.parse_source_parasite(data) == 42
    assert logic.parse_source_parasite(list(data)) == 42     # GI may hand back a list of ints
    for foreign in (b"", b"x", b"-3", b"0", None):
        assert logic.parse_source_parasite(foreign) is None


def test_the_dialog_says_when_no_drip_model_is_installed(tmp_path):
    cfg = tmp_path / "config.json"
    env = {"DRIP_MATTING_CONFIG": str(cfg)}
    assert not logic.drip_model_configured(env)
    cfg.write_text(json.dumps({"drip_model": "/models/drip"}))
    assert logic.drip_model_configured(env)
    assert logic.drip_model_configured({"DRIP_MATTING_MODEL": "/m"})
    labels = dict(rules.engine_choices(False))
    assert labels["drip"] == "DRIP (AI model: not installed)"
    assert dict(rules.engine_choices(True))["drip"] == "DRIP (AI model)"
    assert [nick for nick, _ in rules.engine_choices(True)] == ["auto", "classical", "drip"]
    assert set(nick for nick, _ in rules.engine_choices(True)) == set(drip_protocol.ENGINES)


def test_dialog_values_survive_a_failed_run(tmp_path):
    path = str(tmp_path / "state" / "dialog.json")
    assert logic.load_dialog_values(path) == {}
    logic.save_dialog_values({"band-radius": 40, "engine": "classical", "keep-trimap": False, "junk": 1},
                             path)
    assert logic.load_dialog_values(path) == {"band-radius": 40, "engine": "classical", "keep-trimap": False}
    (tmp_path / "state" / "dialog.json").write_text("[1, 2]")
    assert logic.load_dialog_values(path) == {}
    logic.save_dialog_values({"band-radius": 3}, str(tmp_path / "missing-dir-is-made" / "d.json"))


def test_painted_trimaps_know_only_pure_white_and_black():
    import numpy as np

    from drip_core.trimaps import from_painted
    channel = np.array([[0, 1, 64, 128, 200, 254, 255]], np.uint8)
    np.testing.assert_array_equal(from_painted(channel), [[0, 128, 128, 128, 128, 128, 255]])
    deep = np.array([[0, 65535, 65000, 30000]], np.uint16)
    np.testing.assert_array_equal(from_painted(deep), [[0, 255, 128, 128]])


def test_the_region_read_reaches_as_far_as_the_band():
    bounds = (100, 100, 300, 200)  # a 200 x 100 selection
    assert logic.band_reach(bounds, 12) == 12
    reach = logic.band_reach(bounds, drip_protocol.AUTO_BAND)   # the smart band: a share of the object's size
    assert reach == int(-(-drip_protocol.AUTO_BAND_REACH * (200 * 100) ** 0.5 // 1)) + 2
    roi = logic.selection_roi(bounds, "auto", (0, 0), (1000, 1000))
    assert roi == (100 - reach - logic.DEFAULT_MARGIN, 100 - reach - logic.DEFAULT_MARGIN,
                   200 + 2 * (reach + logic.DEFAULT_MARGIN), 100 + 2 * (reach + logic.DEFAULT_MARGIN))
    job = logic.build_job(40, 30, 8, "selection-band", "auto", "classical")
    assert drip_protocol.JobSpec.from_header(job.to_header(), 10**6).band_radius == "auto"


def test_the_dialogs_keyboard_shortcuts_are_unique():
    """Each field's Alt+letter reaches that field: no mnemonic shared with another field or
    with the buttons GIMP adds to a procedure dialog (a shared one only cycles the focus)."""
    import re
    source = (PLUGIN_DIR / "drip_matting.py").read_text()
    labels = re.findall(r'add_\w+_argument\(\s*"[\w-]+",\s*"([^"]*)"', source)
    assert len(labels) >= 8, labels
    gimp_buttons = ["_Help", "_Reset", "_Cancel", "_OK", "_Load Saved Settings", "_Save Settings"]
    keys = [re.search(r"_(\w)", label).group(1).lower() for label in labels + gimp_buttons]
    assert len(keys) == len(set(keys)), sorted(zip(keys, labels + gimp_buttons))


def test_result_parasite_round_trip():
    data = logic.result_parasite_data("0123abcd", (10, 20, 300, 400))
    assert logic.parse_result_parasite(data) == ("0123abcd", (10, 20, 300, 400))
    # GIMP gives a list of ints
    assert logic.parse_result_parasite(list(data)) == ("0123abcd", (10, 20, 300, 400))
    for bad in (b"", b"id 1 2 3", b"id 1 2 3 x", b"\xff\xfe", None):
        assert logic.parse_result_parasite(bad) is None


def test_trimap_tiles_holding_covers_exactly_the_cells_with_the_value_merged_along_rows():
    w, h, tile = 10, 7, 4
    plane = bytearray(w * h)
    for x, y in [(1, 1), (5, 2), (9, 6)]:  # cells (0, 0), (1, 0), (2, 1)
        plane[y * w + x] = 128
    plane[3 * w + 9] = 255  # another value: not looked for
    rects = logic.TrimapTiles(bytes(plane), w, h, tile).holding(128)
    assert rects == [(0, 0, 8, 4), (8, 4, 2, 3)]  # cells 0 and 1 of the first row merged; edge cells clipped
    covered = {(x, y) for rx, ry, rw, rh in rects for x in range(rx, rx + rw) for y in range(ry, ry + rh)}
    assert all((i % w, i // w) in covered for i, v in enumerate(plane) if v == 128)
    assert logic.TrimapTiles(bytes(w * h), w, h, tile).holding(128) == []
    # received buffers are views
    assert logic.TrimapTiles(memoryview(bytes(plane)), w, h, tile).holding(128) == rects


def test_mask_plan_starts_from_the_commoner_known_side_and_cover_every_other_pixel():
    w, h, tile = 16, 8, 4
    tri = bytearray([255] * (w * h))          # mostly foreground ...
    for y in range(h):
        tri[y * w + 15] = 0                   # ... a background column ...
    tri[2 * w + 6] = 128                      # ... and one unknown pixel
    white, rects = logic.TrimapTiles(bytes(tri), w, h, tile).mask_plan()
    assert white  # started white: only the cells with background or unknown pixels are written
    covered = {(x, y) for rx, ry, rw, rh in rects for x in range(rx, rx + rw) for y in range(ry, ry + rh)}
    assert all((i % w, i // w) in covered for i, v in enumerate(tri) if v != 255)
    assert sum(r[2] * r[3] for r in rects) == 3 * 16  # cells (3, 0), (3, 1) and (1, 0)
    inverted = bytes(255 - v if v != 128 else 128 for v in tri)
    assert logic.TrimapTiles(inverted, w, h, tile).mask_plan()[0] is False  # mostly background: started black


def test_every_stage_a_real_server_sends_shows_the_plug_ins_text(server):
    """Through a real drip-server: a smart-band job's every progress stage is a Stage and reads
    as the plug-in's own text, not the fallback for stages it does not know."""
    import numpy as np
    from conftest import load_alphamatting

    from drip_core.client import connect
    image, tri, _ = load_alphamatting("GT02")
    image, tri = image[100:260, 200:420].copy(), tri[100:260, 200:420]
    selection = np.where(tri >= 128, 255, 0).astype(np.uint8)
    seen = []
    with connect(str(server.discovery), spawn=False) as client:
        client.matte(image, selection, engine="classical", trimap_source="selection_band",
                     progress=lambda fraction, stage, message: seen.append(stage))
    assert {"queued", "preparing", "loading model", "starting", "alpha", "foreground", "done"} <= set(seen)
    fallback = f"Drip Matting: {logic.UNKNOWN_STAGE_TEXT}"
    for stage in seen:
        assert drip_protocol.Stage.of(stage) is not None, stage
        assert not logic.progress_text(stage).startswith(fallback), stage


def engine_error(code):
    """The error the server's own code raises for ``code`` (what the plug-in receives)."""
    import numpy as np

    from drip_core import trimaps
    from drip_core.region import JobRegion
    image = np.zeros((40, 40, 3), np.uint8)
    try:
        if code == "empty_selection":
            trimaps.build("selection_band", np.zeros((40, 40), np.uint8), 8, image.shape, image)
        else:
            JobRegion.around_unknown(image, np.full((40, 40), 255, np.uint8), 8)
    except ProtocolError as exc:
        return ProtocolError(exc.code, exc.message)  # as it arrives: code and message, the hint added here
    raise AssertionError(f"no {code} error")


@pytest.mark.parametrize("code, once, never", [
    ("empty_selection", "nothing is selected", "selection is empty"),
    ("no_unknown", "no unknown (grey) pixels", "no grey (unknown)"),
])
def test_a_server_error_whose_hint_restates_it_is_said_once(code, once, never):
    """Issue 25: "the selection is empty. Nothing is selected: ..." said the cause twice (the
    engine's words and the hint's differed); now the hint only says what to do. The server's
    log does not explain the user's own mistake: it is not named."""
    text = logic.user_message(engine_error(code), "/x/server.log")
    assert text.lower().count(once) == 1 and never not in text.lower(), text
    assert "Server log" not in text and text.endswith("."), text
