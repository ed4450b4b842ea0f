"""A real drip-server process on loopback: jobs, progress, queueing, cancel, auth, lifecycle."""
from __future__ import annotations

import json
import socket
import struct
import time
import uuid

import numpy as np
import pytest
from conftest import load_alphamatting

import drip_protocol as P
from drip_core.client import connect
from drip_core.engines import get_engine


def raw_connect(server, token=None):
    sock = socket.create_connection(server.address, timeout=10)
    P.send_frame(sock, {"type": "hello", "proto": P.PROTOCOL_VERSION,
                        "token": token or server.record["token"]})
    header, _ = P.recv_frame(sock, 0)
    assert header["type"] == "welcome", header
    return sock


def small_case():
    image, tri, gt = load_alphamatting("GT02")
    return image[100:260, 200:420].copy(), tri[100:260, 200:420].copy()


def test_discovery_file_and_welcome(server):
    rec = server.record
    assert rec["host"] == "127.0.0.1" and rec["pid"] == server.proc.pid and rec["version"]
    assert len(rec["token"]) >= 32
    assert (server.discovery.stat().st_mode & 0o777) == 0o600
    with connect(str(server.discovery), spawn=False) as c:
        info = c.server_info
        assert info["proto"] == P.PROTOCOL_VERSION
        assert {e["name"] for e in info["engines"]} == {"classical", "drip"}
        assert info["log_file"] == str(server.log)


def test_job_through_server_matches_in_process_engine(server):
    image, tri = small_case()
    events = []
    with connect(str(server.discovery), spawn=False) as c:
        fg, alpha, info = c.matte(image, tri, engine="classical", return_info=True,
                                  progress=lambda f, s, m: events.append((f, s)))
    local = get_engine("classical").matte(image, tri)
    expected = np.clip(np.rint(local.alpha * 255), 0, 255).astype(np.uint8)
    assert np.abs(alpha.astype(int) - expected).max() <= 1
    assert fg.shape == image.shape and fg.dtype == np.uint8
    assert info["engine"] == "classical" and info["seconds"] > 0
    stages = [s for _, s in events]
    assert "preparing" in stages and "alpha" in stages and "done" in stages
    fractions = [f for f, _ in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert (alpha[tri == 255] == 255).all() and (alpha[tri == 0] == 0).all()


def test_selection_band_trimap_built_server_side(server):
    image, _ = small_case()
    selection = np.zeros(image.shape[:2], np.uint8)
    selection[30:130, 40:180] = 255
    with connect(str(server.discovery), spawn=False) as c:
        fg, alpha, info = c.matte(image, selection, engine="classical", trimap_source="selection_band",
                                  band_radius=6, want_trimap=True, return_info=True)
    trimap = info["trimap"]
    assert set(np.unique(trimap)) == {0, 128, 255}
    assert trimap[80, 100] == 255 and trimap[0, 0] == 0 and trimap[30, 100] == 128
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 255).all()


def test_wrong_or_missing_token_is_rejected_and_closed(server):
    for token in ("wrong-token", ""):
        sock = socket.create_connection(server.address, timeout=5)
        P.send_frame(sock, {"type": "hello", "proto": P.PROTOCOL_VERSION, "token": token})
        header, _ = P.recv_frame(sock, 0)
        assert header["type"] == "error" and header["code"] == "auth_failed"
        assert sock.recv(1) == b""  # closed
        sock.close()
    # A job before hello is refused too.
    sock = socket.create_connection(server.address, timeout=5)
    P.send_frame(sock, {"type": "job", "id": "x"})
    header, _ = P.recv_frame(sock, 0)
    assert header["code"] == "bad_request"
    sock.close()


def test_version_mismatch(server):
    sock = socket.create_connection(server.address, timeout=5)
    P.send_frame(sock, {"type": "hello", "proto": 99, "token": server.record["token"]})
    header, _ = P.recv_frame(sock, 0)
    assert header["code"] == "version_mismatch"


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    P.MAGIC + struct.pack(">IQ", 5, 0) + b"\xff\xfe\xfd\xfc\xfb",
    P.MAGIC + struct.pack(">IQ", 2**31, 0),
    P.MAGIC + struct.pack(">IQ", 10, 2**60) + b"{}",
])
def test_malformed_frames_get_an_error_and_the_server_survives(server, garbage):
    sock = socket.create_connection(server.address, timeout=5)
    sock.sendall(garbage)
    header, _ = P.recv_frame(sock, 0)
    assert header["type"] == "error" and header["code"] in ("bad_frame", "too_large")
    sock.close()
    image, tri = small_case()
    with connect(str(server.discovery), spawn=False) as c:
        _, alpha = c.matte(image, tri, engine="classical")
    assert alpha.shape == tri.shape


def test_oversized_job_is_rejected_before_its_payload_arrives(server_factory):
    server = server_factory("--max-pixels", "10000")
    sock = raw_connect(server)
    header = {"type": "job", "id": "big", "width": 1000, "height": 1000, "image_format": "rgb8",
              "mask_format": "y8"}
    raw = json.dumps(header).encode()
    # Claim the right payload size but send none of it: the answer must come anyway.
    sock.sendall(P.PREFIX.pack(P.MAGIC, len(raw), 1000 * 1000 * 4) + raw)
    reply, _ = P.recv_frame(sock, 0)
    assert reply["code"] == "too_large"


def test_payload_size_disagreeing_with_header(server):
    sock = raw_connect(server)
    P.send_frame(sock, {"type": "job", "id": "j", "width": 4, "height": 4, "image_format": "rgb8"}, b"x" * 10)
    reply, _ = P.recv_frame(sock, 0)
    assert reply["code"] == "bad_request" and "needs" in reply["message"]


def test_no_unknown_region_and_empty_selection_are_clear_errors(server):
    image, _ = small_case()
    with connect(str(server.discovery), spawn=False) as c:
        with pytest.raises(P.ProtocolError) as err:
            c.matte(image, np.full(image.shape[:2], 255, np.uint8), engine="classical")
        # a painted trimap: painting grey is the fix, a wider band is not (issue 25)
        text = err.value.user_text()
        assert err.value.code == "no_unknown" and "Paint grey" in text and "widen" not in text, text
        with pytest.raises(P.ProtocolError) as err:
            c.matte(image, np.zeros(image.shape[:2], np.uint8), engine="classical",
                    trimap_source="selection_band")
        assert err.value.code == "empty_selection"
        # The connection still works after job errors.
        _, alpha = c.matte(image, small_case()[1], engine="classical")
        assert alpha.shape == image.shape[:2]


def slow_case():
    """A job that takes the classical engine a few seconds: a big, wide unknown band."""
    rng = np.random.default_rng(0)
    image = (rng.random((900, 900, 3)) * 255).astype(np.uint8)
    trimap = np.zeros((900, 900), np.uint8)
    trimap[100:800, 100:800] = 128
    trimap[300:600, 300:600] = 255
    return image, trimap


def send_job(sock, image, trimap, engine="classical"):
    job_id = uuid.uuid4().hex
    h, w = trimap.shape
    P.send_frame(sock, {"type": "job", "id": job_id, "width": w, "height": h, "image_format": "rgb8",
                        "mask_format": "y8", "engine": engine}, image.tobytes() + trimap.tobytes())
    return job_id


def test_two_clients_are_queued_fifo_with_heartbeats(server):
    slow_image, slow_trimap = slow_case()
    image, tri = small_case()
    first = raw_connect(server)
    send_job(first, slow_image, slow_trimap)
    accepted, _ = P.recv_frame(first, 0)
    assert accepted["type"] == "accepted" and accepted["position"] == 0
    time.sleep(0.3)
    second = raw_connect(server)
    second_id = send_job(second, image, tri)
    accepted2, _ = P.recv_frame(second, 0)
    assert accepted2["position"] == 1
    # While it waits, the second client receives heartbeats at least every ~1 s.
    stamps, finished = [], {}
    while True:
        header, payload = P.recv_frame(second, 10**8)
        stamps.append(time.monotonic())
        if header["type"] in ("result", "error"):
            finished["second"] = time.monotonic()
            assert header["type"] == "result" and header["id"] == second_id
            break
    gaps = np.diff(stamps)
    assert len(stamps) >= 3 and gaps.max() < 2.5
    # The first job finished before the second (FIFO): its result is already waiting.
    first.settimeout(1)
    while True:
        header, _ = P.recv_frame(first, 10**8)
        if header["type"] == "result":
            break


def test_disconnect_cancels_running_and_queued_jobs(server):
    slow_image, slow_trimap = slow_case()
    first = raw_connect(server)
    first_id = send_job(first, slow_image, slow_trimap)
    second = raw_connect(server)
    second_id = send_job(second, slow_image, slow_trimap)
    P.recv_frame(first, 0)
    P.recv_frame(second, 0)
    time.sleep(0.5)
    second.close()   # queued job: dropped before it starts
    first.close()    # running job: stopped at the next cancel check
    image, tri = small_case()
    with connect(str(server.discovery), spawn=False) as c:
        _, alpha = c.matte(image, tri, engine="classical")
        assert alpha.shape == tri.shape
    log = server.log.read_text()
    assert f"job {first_id} cancelled" in log
    deadline = time.monotonic() + 10
    while f"job {second_id} done" in log or f"job {second_id} cancelled" not in log:
        assert f"job {second_id} done" not in log
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
        log = server.log.read_text()
    assert f"job {second_id} done" not in log


def test_explicit_cancel_message(server):
    slow_image, slow_trimap = slow_case()
    sock = raw_connect(server)
    job_id = send_job(sock, slow_image, slow_trimap)
    P.recv_frame(sock, 0)
    P.send_frame(sock, {"type": "cancel", "id": job_id})
    while True:
        header, _ = P.recv_frame(sock, 10**8)
        if header["type"] in ("result", "error"):
            break
    assert header["type"] == "error" and header["code"] == "cancelled"


def test_ping_status_and_shutdown(server):
    with connect(str(server.discovery), spawn=False) as c:
        assert c.connection.request({"type": "ping"})["type"] == "pong"
        status = c.connection.request({"type": "status"})
        assert status["queues"] == {"cpu": 0, "accelerator": 0}
        c.shutdown()
    assert server.proc.wait(10) == 0
    assert not server.discovery.exists()


def test_idle_timeout_shuts_the_server_down(server_factory):
    server = server_factory("--idle-timeout", "1")
    assert server.proc.wait(15) == 0
    assert not server.discovery.exists()


def test_two_servers_started_at_once_one_survives(tmp_path):
    import subprocess
    import sys

    from conftest import REPO
    cmd = [sys.executable, "-m", "drip_core.server", "--discovery-file", str(tmp_path / "s.json"),
           "--log-file", str(tmp_path / "log")]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    try:
        deadline = time.monotonic() + 30
        while sum(p.poll() is None for p in procs) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = [p for p in procs if p.poll() is None]
        assert len(alive) == 1
        record = json.loads((tmp_path / "s.json").read_text())
        assert record["pid"] == alive[0].pid
        with connect(str(tmp_path / "s.json"), spawn=False) as c:
            assert c.connection.request({"type": "ping"})["type"] == "pong"
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_client_spawns_a_server_when_none_runs(tmp_path):
    discovery = str(tmp_path / "state" / "server.json")
    client = connect(discovery, spawn=True, log_file=str(tmp_path / "server.log"),
                     server_args=["--idle-timeout", "30"])
    try:
        image, tri = small_case()
        _, alpha = client.matte(image, tri, engine="classical")
        assert alpha.shape == tri.shape
    finally:
        client.shutdown()
        client.close()


def test_no_server_and_no_spawn_is_a_clear_error(tmp_path):
    with pytest.raises(P.ProtocolError) as err:
        connect(str(tmp_path / "none.json"), spawn=False)
    assert err.value.code == "no_server"


def test_non_loopback_bind_requires_tls(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "drip_core.server", "--host", "0.0.0.0", "--discovery-file",
                        str(tmp_path / "s.json"), "--log-file", str(tmp_path / "log")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--tls-cert" in r.stderr
    assert not (tmp_path / "s.json").exists()
