"""Load, faults and bad inputs (issue 7), CI-sized; the long runs are bench/stress.py.

Load: concurrent clients with correct results, nothing lost, FIFO, heartbeats; sequential
jobs with flat memory. Faults: client or server killed mid-job, engine errors and
out-of-memory (through the DRIP_MATTING_TEST_FAULTS test hook), stale discovery files,
clients racing to start a server. Bad images and trimaps through the CLI and the server.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from conftest import REPO, ServerProcess
from PIL import Image

import drip_protocol as P
from bench import fuzzing, stress  # noqa: E402
from drip_core import cli
from drip_core.client import connect
from drip_core.engines import get_engine


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    s = ServerProcess(tmp_path_factory.mktemp("shared-server"))
    yield s
    s.stop()


# ----------------------------------------------------------------------------------------
# Load
# ----------------------------------------------------------------------------------------

def test_concurrent_clients_complete_in_fifo_order_with_heartbeats(server):
    r = stress.run_load(server, clients=6, jobs=4, size=96, time_limit=120)
    assert r["failures"] == [] and r["jobs_lost"] == 0 and r["jobs_completed"] == 24
    assert r["wrong_results"] == 0 and r["distinct_ids"] == 24
    assert r["fifo_ok"]
    assert r["max_heartbeat_gap_s"] < 2.0   # heartbeats every 1 s while queued or running
    assert r["server_alive"]


def test_a_full_queue_answers_busy_and_the_connection_stays_usable(server_factory):
    server = server_factory("--max-queue", "1")
    slow_image, slow_trimap = stress.slow_case(900)
    image, trimap = stress.matting_case(48, 0)
    h, w = trimap.shape
    socks = []
    try:
        for i, (im, tri) in enumerate(((slow_image, slow_trimap), (image, trimap), (image, trimap))):
            sock = socket.create_connection(server.address, timeout=30)
            P.send_frame(sock, {"type": "hello", "proto": P.PROTOCOL_VERSION,
                                "token": server.record["token"]})
            assert P.recv_frame(sock, 0)[0]["type"] == "welcome"
            th, tw = tri.shape
            P.send_frame(sock, {"type": "job", "id": f"q{i}", "width": tw, "height": th,
                                "image_format": "rgb8", "engine": "classical"}, [im.tobytes(), tri.tobytes()])
            reply, _ = P.recv_frame(sock, 0)
            socks.append((sock, reply))
            if i == 0:   # let the first one start running, so the second really waits in the queue
                assert stress.wait_for(lambda: " accepted: 900x900" in server.log.read_text(), 30)
                time.sleep(0.3)
        assert [r["type"] for _, r in socks] == ["accepted", "accepted", "error"]
        third, busy = socks[2]
        assert busy["code"] == "busy" and busy["id"] == "q2"
        P.send_frame(third, {"type": "ping"})
        assert P.recv_frame(third, 0)[0]["type"] == "pong"   # still usable
        socks[0][0].close()                                   # cancel the slow one: the queued one runs
        second = socks[1][0]
        while True:
            reply, _ = P.recv_frame(second, 1 << 24)
            if reply["type"] in ("result", "error"):
                break
        assert reply["type"] == "result" and reply["id"] == "q1"
    finally:
        for sock, _ in socks:
            sock.close()


def test_sequential_jobs_keep_memory_flat(server):
    r = stress.run_soak(server, jobs=60, size=48, sample_every=10, warmup=20, time_limit=120)
    assert r["errors"] == [] and r["wrong_results"] == 0 and r["completed"] == 60
    assert r["rss_growth_after_warmup_mb"] < 15, r["rss_samples"]


# ----------------------------------------------------------------------------------------
# Faults
# ----------------------------------------------------------------------------------------

def test_client_killed_mid_job_cancels_it_and_frees_its_memory(server):
    r = stress.fault_client_killed(server, size=900)
    assert r["engine_was_running"] and r["cancelled_in_log"] and not r["done_in_log"], r
    assert r["rss_after_mb"] < r["rss_baseline_mb"] + 30, r
    assert r["valid_job_after"] and r["ok"]


def test_server_killed_mid_job_is_reported_by_the_client(server):
    r = stress.fault_server_killed(server, size=900)
    assert r["crash"] is None and r["code"] == "connection_lost", r
    assert r["report_seconds"] < 5
    # what the person reads says the server went away (one message builder: drip_protocol.errors)
    assert any(words in r["message"] for words in ("crash", "lost", "closed the connection")), r["message"]


def test_cli_reports_a_killed_server_and_writes_no_output(server, tmp_path):
    image, trimap = stress.slow_case(900)
    Image.fromarray(image).save(tmp_path / "photo.png")
    Image.fromarray(trimap).save(tmp_path / "trimap.png")
    host, port = server.address
    proc = subprocess.Popen([sys.executable, "-m", "drip_core.cli", str(tmp_path / "photo.png"), "--trimap",
                             str(tmp_path / "trimap.png"), "--alpha", str(tmp_path / "a.png"), "--engine",
                             "classical", "--server", f"{host}:{port}", "--discovery-file",
                             str(server.discovery)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert stress.wait_for(lambda: " accepted: " in server.log.read_text(), 60)
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("drip-matte: ") and "connection" in last
    assert not (tmp_path / "a.png").exists()


def test_engine_error_and_out_of_memory_have_stable_codes_and_the_server_stays_up(server_factory):
    server = server_factory(env={"DRIP_MATTING_TEST_FAULTS": "1"})
    r = stress.fault_engine(server)
    assert r["codes"] == {"engine_error": "engine_failed", "oom": "out_of_memory",
                          "cuda_oom": "out_of_memory"}
    assert r["server_alive"] and r["valid_job_after"]
    assert max(r["rss_after_mb"].values()) < r["rss_baseline_mb"] + 30, r   # the 64 MB hog was given back
    log = server.log.read_text()
    assert "ran out of memory" in log and "injected engine failure" in log


def test_fault_hook_is_inert_without_its_environment_variable(shared_server):
    image, trimap = stress.matting_case(48, 1)
    h, w = trimap.shape
    with connect(str(shared_server.discovery), spawn=False) as c:
        out = c.connection.run_job({"id": "nofault", "width": w, "height": h, "image_format": "rgb8",
                                    "engine": "classical", "options": {"fault": "oom"}},
                                   image.tobytes(), trimap.tobytes())
    assert out["header"]["type"] == "result"


def test_out_of_memory_frees_accelerator_memory(monkeypatch):
    """In-process: the worker maps MemoryError and 'CUDA out of memory' to out_of_memory and
    empties the accelerator cache (no GPU here: the call itself is checked)."""
    from drip_core.server import jobs
    calls = []
    monkeypatch.setattr(jobs, "_free_accelerator_memory", lambda: calls.append(1))
    monkeypatch.setenv("DRIP_MATTING_TEST_FAULTS", "1")
    image, trimap = stress.matting_case(32, 0)

    class FakeJob:
        def __init__(self, fault):
            self.spec = P.JobSpec(32, 32, id=fault, band_radius=0, engine="classical",
                                  options={"fault": fault})
            self.image, self.mask, self.cancelled, self.posted = image, trimap, threading.Event(), []
            self.id, self.cached = fault, None

        def progress(self, *a):
            pass

        def check_cancel(self):
            pass

        def post(self, header, payload=b""):
            self.posted.append(header)

    worker = jobs.DeviceWorker("cpu", None, None)
    try:
        for fault, code in (("oom", "out_of_memory"), ("cuda_oom", "out_of_memory"),
                            ("engine_error", "engine_failed")):
            job = FakeJob(fault)
            worker._process(job)
            assert job.posted[-1]["type"] == "error" and job.posted[-1]["code"] == code
    finally:
        worker.shutdown()
    assert len(calls) == 3


@pytest.mark.parametrize("kind", ["dead_pid", "port_reused"])
def test_stale_discovery_file_gets_a_fresh_server(tmp_path, kind):
    r = stress.fault_stale_discovery(tmp_path / kind, kind)
    assert r["ok"], r


def test_clients_racing_to_start_a_server_all_get_the_same_one(tmp_path):
    r = stress.fault_concurrent_spawn(tmp_path, n=3)
    assert r["ok"], r


# ----------------------------------------------------------------------------------------
# Bad images and trimaps: the CLI
# ----------------------------------------------------------------------------------------

def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size and holds no pixels: readers must judge it from its header."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def png_rgb16(arr: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def run_cli(capsys, *args):
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_cli_reads_grey_indexed_16bit_and_float_layers(tmp_path, capsys):
    """Each format gives the alpha of the equivalent 8-bit RGB image (one batch run), written at
    the input's own depth: 16-bit and float inputs give 16-bit PNGs."""
    from drip_core.image_io import read_rgb
    image, trimap = stress.matting_case(64, 2)
    grey = image[..., 1].copy()
    rgb_grey = np.repeat(grey[..., None], 3, axis=2)
    palette = Image.fromarray(image).quantize(64)
    cases = {
        "grey.png": (Image.fromarray(grey), rgb_grey),
        "indexed.png": (palette, np.asarray(palette.convert("RGB"))),
        "greyalpha.png": (Image.fromarray(np.dstack([grey, np.full_like(grey, 200)]), "LA"), rgb_grey),
        "rgba.png": (Image.fromarray(np.dstack([image, np.full_like(grey, 90)])), image),
        "grey16.png": (Image.fromarray(grey.astype(np.uint16) * 257), rgb_grey),
        "float.tif": (Image.fromarray(grey.astype(np.float32) / 255), rgb_grey),
    }
    inputs, trimaps, out = tmp_path / "in", tmp_path / "tri", tmp_path / "out"
    inputs.mkdir()
    trimaps.mkdir()
    (inputs / "rgb16.png").write_bytes(png_rgb16(image.astype(np.uint16) * 257))
    cases["rgb16.png"] = (None, image)  # read at 16 bits (pypng), not as Pillow's 8-bit decode
    for name, (im, _) in cases.items():
        if im is not None:
            im.save(inputs / name)
        tri = trimap
        if name == "grey16.png":     # 16-bit and float trimaps too
            Image.fromarray(tri.astype(np.uint16) * 257).save(trimaps / name)
        elif name == "float.tif":
            Image.fromarray(tri.astype(np.float32) / 255).save(trimaps / name)
        else:
            Image.fromarray(tri).save(trimaps / name)
    code, err = run_cli(capsys, "--input-dir", inputs, "--trimap-dir", trimaps, "--output-dir", out,
                        "--engine", "classical", "--quiet")
    assert code == 0, err
    for name, (_, rgb) in cases.items():
        got = read_rgb(str(out / "alpha" / (name.rsplit(".", 1)[0] + ".png")))[..., 0]
        deep = name in ("grey16.png", "rgb16.png", "float.tif")
        assert got.dtype == (np.uint16 if deep else np.uint8), name
        got8 = got.astype(float) / (257.0 if deep else 1.0)
        want = stress.expected_alpha(np.ascontiguousarray(rgb), trimap)
        assert np.abs(got8 - want.astype(int)).max() <= 1, name


@pytest.mark.parametrize("case, expected", [
    ("zero_size", "not an image file"),
    ("over_limit", "more than the limit"),
    ("decompression_bomb", "too large"),
    ("no_foreground", "no definite foreground"),
    ("all_unknown", "no definite"),
    ("float_nan", "NaN"),
])
def test_cli_bad_images_and_trimaps_give_one_clear_line(tmp_path, capsys, case, expected):
    image, trimap = stress.matting_case(32, 0)
    img, tri = tmp_path / "img.png", tmp_path / "tri.png"
    Image.fromarray(image).save(img)
    Image.fromarray(trimap).save(tri)
    if case == "zero_size":
        img.write_bytes(png_header_only(0, 0))
    elif case == "over_limit":
        img.write_bytes(png_header_only(9000, 9000))        # 81 MP > 64 MP: refused from the header
    elif case == "decompression_bomb":
        img.write_bytes(png_header_only(30000, 30000))      # Pillow's own bomb check
    elif case == "no_foreground":  # and nothing stands out from the background to take as foreground
        Image.fromarray(np.where(trimap == 255, 128, trimap).astype(np.uint8)).save(tri)
        Image.fromarray(np.full_like(image, 100)).save(img)
    elif case == "all_unknown":
        Image.fromarray(np.full_like(trimap, 128)).save(tri)
    elif case == "float_nan":
        f = image[..., 0].astype(np.float32) / 255
        f[3, 3] = np.nan
        img = tmp_path / "img.tif"
        Image.fromarray(f).save(img)
    code, err = run_cli(capsys, img, "--trimap", tri, "--alpha", tmp_path / "a.png", "--engine", "classical")
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("drip-matte: ") and expected in last, last
    assert not (tmp_path / "a.png").exists()


# ----------------------------------------------------------------------------------------
# Bad images and trimaps: the server
# ----------------------------------------------------------------------------------------

def raw_job(server, header, payload=b""):
    sock = socket.create_connection(server.address, timeout=30)
    try:
        P.send_frame(sock, {"type": "hello", "proto": P.PROTOCOL_VERSION, "token": server.record["token"]})
        assert P.recv_frame(sock, 0)[0]["type"] == "welcome"
        P.send_frame(sock, dict(header, type="job"), payload)
        while True:
            reply, data = P.recv_frame(sock, 1 << 30)
            if reply["type"] in ("result", "error"):
                return reply, data
    finally:
        sock.close()


def real_16bit_case(seed: int = 1):
    """The small matting scene at 16 bits with samples that are *not* multiples of 257 (an
    8-bit image converted up could not show a 16 -> 8 -> 16 bit loss)."""
    image, trimap = stress.matting_case(64, seed)
    dither = np.random.default_rng(seed).integers(-120, 121, image.shape)
    deep = np.clip(image.astype(np.int64) * 257 + dither, 0, 65535).astype(np.uint16)
    assert (deep % 257 != 0).mean() > 0.9
    return deep, trimap


def test_server_16bit_layers_and_16bit_results(shared_server):
    """16 bits in, 16 bits out, through a real server: known foreground bit-exact, unknown alpha
    with more than 256 levels, and the same alpha as the 8-bit image within 1/255."""
    deep, trimap = real_16bit_case()
    image8 = np.rint(deep / 257.0).astype(np.uint8)
    with connect(str(shared_server.discovery), spawn=False) as c:
        _, alpha8 = c.matte(image8, trimap, engine="classical")
        fg16, alpha16 = c.matte(deep, (trimap.astype("<u2") * 257), engine="classical")
        fgf, alphaf = c.matte(deep.astype(np.float32) / 65535, trimap, engine="classical")
    assert fg16.dtype == np.uint16 and alpha16.dtype == np.uint16
    known = trimap == 255
    np.testing.assert_array_equal(fg16[known], deep[known])           # bit-exact, not 8-bit x 257
    assert (alpha16[known] == 65535).all() and (alpha16[trimap == 0] == 0).all()
    assert np.unique(alpha16[trimap == 128]).size > 256
    # rounding the dither to 8 bits moves alpha a little (and may flip a trimming decision here and there)
    assert np.abs(alpha16 / 257.0 - alpha8).mean() <= 1.0
    local = get_engine("classical").matte(deep, trimap, dtype=np.uint16)  # same pixels in-process
    assert np.abs(local.alpha.astype(int) - alpha16).max() <= 1
    # float32 layers: the same, in floats
    assert fgf.dtype == np.float32 and alphaf.dtype == np.float32
    np.testing.assert_array_equal(fgf[known], deep[known].astype(np.float32) / 65535)
    assert np.abs(alphaf * 65535 - alpha16).max() <= 1.0


def test_rgba_input_sends_only_rgb(shared_server):
    """An RGBA array's alpha is not part of the matting problem and never crosses the wire."""
    image, trimap = stress.matting_case(64, 3)
    with connect(str(shared_server.discovery), spawn=False) as c:
        fg_a, alpha_a = c.matte(np.dstack([image, np.full_like(trimap, 7)]), trimap, engine="classical")
        fg, alpha = c.matte(image, trimap, engine="classical")
    np.testing.assert_array_equal(alpha_a, alpha)
    np.testing.assert_array_equal(fg_a, fg)


@pytest.mark.parametrize("name, width, height, source, mask, code", [
    ("zero", 0, 0, "trimap", None, "bad_image"),
    ("one_unknown", 1, 1, "trimap", 128, "bad_trimap"),
    ("one_known", 1, 1, "trimap", 255, "no_unknown"),
    ("no_foreground", 24, 24, "trimap", "no_fg", "bad_trimap"),
    ("no_background", 24, 24, "trimap", "no_bg", "bad_trimap"),
    ("all_unknown", 24, 24, "trimap", 128, "bad_trimap"),
    ("nothing_selected", 24, 24, "selection_band", 0, "empty_selection"),
    ("all_selected", 24, 24, "selection_band", 255, "no_unknown"),
    ("feathered_nothing", 24, 24, "feathered", 0, "empty_selection"),
    ("feathered_all", 24, 24, "feathered", 255, "no_unknown"),
    # the band swallows it: no foreground
    ("one_pixel_selected", 24, 24, "selection_band", "dot", "bad_trimap"),
    ("small_selection", 24, 24, "selection_band", "square", None),
])
def test_server_bad_images_and_trimaps(shared_server, name, width, height, source, mask, code):
    rng = np.random.default_rng(0)
    image = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    if isinstance(mask, int):
        m = np.full((height, width), mask, np.uint8)
    elif mask == "no_fg":
        m = np.zeros((height, width), np.uint8)
        m[6:18, 6:18] = 128
    elif mask == "no_bg":
        m = np.full((height, width), 255, np.uint8)
        m[6:18, 6:18] = 128
    elif mask == "dot":
        m = np.zeros((height, width), np.uint8)
        m[12, 12] = 255
    elif mask == "square":
        m = np.zeros((height, width), np.uint8)
        m[6:18, 6:18] = 255
    else:
        m = np.zeros((height, width), np.uint8)
    reply, data = raw_job(shared_server, {"id": name, "width": width, "height": height,
                                          "image_format": "rgb8", "mask_format": "y8",
                                          "trimap_source": source, "band_radius": 3, "engine": "classical"},
                          image.tobytes() + m.tobytes())
    if code is None:
        assert reply["type"] == "result" and len(data) == width * height * 4
    else:
        assert reply["type"] == "error" and reply["code"] == code, reply
        assert reply.get("id") in (None, name)
        assert reply["message"] and reply["hint"]
    assert stress.run_valid_job(str(shared_server.discovery), size=40)["ok"]   # and it still serves


def test_client_refuses_layers_it_cannot_send(shared_server):
    with connect(str(shared_server.discovery), spawn=False) as c:
        for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float64),
                    np.zeros((10, 10, 2), np.uint8), np.zeros((0, 0, 3), np.uint8)):
            with pytest.raises(P.ProtocolError) as err:
                c.matte(bad, np.zeros(bad.shape[:2], np.uint8))
            assert err.value.code in ("bad_image", "bad_trimap")
        with pytest.raises(P.ProtocolError) as err:
            c.matte(np.zeros((10, 10, 3), np.uint8), np.zeros((9, 10), np.uint8))
        assert err.value.code == "bad_trimap"
        assert c.connection.request({"type": "ping"})["type"] == "pong"


# ----------------------------------------------------------------------------------------
# Auth: the token on every connection, constant-time, private discovery file, loopback
# ----------------------------------------------------------------------------------------

def test_token_is_compared_with_hmac_compare_digest(monkeypatch):
    seen = []
    from drip_protocol import framing
    real = framing.hmac.compare_digest
    monkeypatch.setattr(framing.hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b))
    assert P.check_token("sekrit", "sekrit") and not P.check_token("sekrit", "sekriT")
    assert not P.check_token("sekrit", "sekrit\x00") and not P.check_token("sekrit", "")
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in seen) and len(seen) == 4
    for bad in (None, 5, ["sekrit"], {"t": 1}, b"sekrit"):
        assert not P.check_token("sekrit", bad)
    assert len(seen) == 4   # non-strings are refused before any comparison


def test_every_connection_must_authenticate(shared_server):
    token = shared_server.record["token"]
    hellos = [
        ({"type": "ping"}, "bad_request"),                                             # no hello at all
        ({"type": "status"}, "bad_request"),
        ({"type": "shutdown"}, "bad_request"),                                         # cannot stop it either
        ({"type": "hello", "proto": P.PROTOCOL_VERSION}, "auth_failed"),               # token missing
        ({"type": "hello", "proto": P.PROTOCOL_VERSION, "token": None}, "auth_failed"),
        ({"type": "hello", "proto": P.PROTOCOL_VERSION, "token": 0}, "auth_failed"),
        ({"type": "hello", "proto": P.PROTOCOL_VERSION, "token": [token]}, "auth_failed"),
        ({"type": "hello", "proto": P.PROTOCOL_VERSION, "token": token[:-1]}, "auth_failed"),
        ({"type": "hello", "proto": P.PROTOCOL_VERSION, "token": token + " "}, "auth_failed"),
        ({"type": "hello", "proto": P.PROTOCOL_VERSION, "token": token.upper()}, "auth_failed"),
    ]
    for hello, code in hellos:
        sock = socket.create_connection(shared_server.address, timeout=10)
        P.send_frame(sock, hello)
        reply, _ = P.recv_frame(sock, 0)
        assert reply["type"] == "error" and reply["code"] == code, (hello, reply)
        assert sock.recv(1) == b""   # and the connection is closed
        sock.close()
    # Authenticating one connection does not authenticate the next.
    with connect(str(shared_server.discovery), spawn=False):
        sock = socket.create_connection(shared_server.address, timeout=10)
        P.send_frame(sock, {"type": "status"})
        assert P.recv_frame(sock, 0)[0]["code"] == "bad_request"
        sock.close()
    assert shared_server.proc.poll() is None


def test_discovery_file_private_even_under_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        path = tmp_path / "state" / "server.json"
        P.write_discovery(str(path), {"host": "127.0.0.1", "port": 1, "token": "t", "pid": 1})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    for mode, usable in ((0o600, True), (0o400, True), (0o640, True), (0o620, False), (0o602, False),
                         (0o666, False)):
        os.chmod(path, mode)
        assert (P.read_discovery(str(path)) is not None) == usable, oct(mode)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown the file")
def test_discovery_file_owned_by_someone_else_is_ignored(tmp_path):
    path = tmp_path / "server.json"
    P.write_discovery(str(path), {"host": "127.0.0.1", "port": 1, "token": "t", "pid": 1})
    os.chown(path, 65534, 65534)
    assert P.read_discovery(str(path)) is None


def test_server_binds_loopback_by_default(shared_server):
    assert shared_server.record["host"] == "127.0.0.1"
    # the listening socket is on 127.0.0.1 only (Linux /proc/net/tcp, port in hex)
    port = shared_server.record["port"]
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    listening = [r[1] for r in rows if r[3] == "0A" and int(r[1].split(":")[1], 16) == port]
    assert listening == ["0100007F:%04X" % port]


def test_a_queued_job_of_a_vanished_client_frees_its_pixels_at_once(tmp_path):
    """In-process: while another job runs, a queued job whose client went away drops its
    image and mask immediately, not when the queue reaches it."""
    from drip_core.server.app import DripServer, ServerOptions

    slow_image, slow_trimap = stress.slow_case(700)
    image, trimap = stress.matting_case(64, 0)

    def job_stream(im, tri, job_id):
        th, tw = tri.shape
        return (fuzzing.raw_frame({"type": "hello", "proto": P.PROTOCOL_VERSION, "token": "tok"})
                + fuzzing.raw_frame({"type": "job", "id": job_id, "width": tw, "height": th,
                                     "image_format": "rgb8", "engine": "classical"},
                                    im.tobytes() + tri.tobytes()))

    async def main():
        server = DripServer(ServerOptions(discovery_file=str(tmp_path / "s.json"), token="tok",
                                          engine="classical"))
        assert await server.start()
        submitted = []
        worker = server.workers["cpu"]
        real_submit = worker.submit
        worker.submit = lambda job: submitted.append(job) or real_submit(job)
        try:
            running_reader = asyncio.StreamReader()
            # no EOF: stays connected
            running_reader.feed_data(job_stream(slow_image, slow_trimap, "running"))
            running = asyncio.ensure_future(server._handle(running_reader, fuzzing.FakeWriter()))
            for _ in range(200):
                await asyncio.sleep(0.02)
                if worker.running is not None:
                    break
            assert worker.running is submitted[0]
            queued_reader = asyncio.StreamReader()
            queued_reader.feed_data(job_stream(image, trimap, "queued"))
            queued_reader.feed_eof()                                                     # the client vanishes
            await asyncio.wait_for(server._handle(queued_reader, fuzzing.FakeWriter()), 10)
            queued = submitted[1]
            assert queued.cancelled.is_set() and queued.image is None and queued.mask is None
            # the running one is untouched
            assert worker.running is submitted[0] and submitted[0].image is not None
            running_reader.feed_eof()
            await asyncio.wait_for(running, 30)
        finally:
            await server.close()

    asyncio.run(main())
