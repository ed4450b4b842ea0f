"""Stopping a real drip-server with SIGTERM or SIGINT: exit status 0, one 'server stopped' line in
its log and no traceback, whether it is idle with a client connected or in the middle of a job."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import REPO, ServerProcess

from drip_core.client import connect
from drip_protocol import ProtocolError


def small_job():
    rng = np.random.default_rng(0)
    image = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    trimap = np.zeros((40, 48), np.uint8)
    trimap[8:32, 8:40] = 128
    trimap[14:26, 16:32] = 255
    return image, trimap


def long_job(size=400):
    """All unknown but a thin known rim: seconds of classical work, cancellable."""
    image = (np.random.default_rng(1).random((size, size, 3)) * 255).astype(np.uint8)
    trimap = np.full((size, size), 128, np.uint8)
    trimap[:4] = 0
    trimap[-4:] = 255
    return image, trimap


def stopped_cleanly(server: ServerProcess, sig) -> str:
    server.proc.send_signal(sig)
    try:
        code = server.proc.wait(30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        raise
    log = server.log.read_text()
    stderr = server.proc.stderr.read().decode()
    assert code == 0, (code, stderr, log)
    for text in (log, stderr):
        assert "Traceback" not in text and "Event loop is closed" not in text, text
        assert "ERROR" not in text, text
    lines = [line for line in log.splitlines() if "server stopped" in line]
    assert len(lines) == 1 and sig.name in lines[0], log
    assert not server.discovery.exists()
    return log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_after_a_job_with_the_client_still_connected(tmp_path, sig):
    server = ServerProcess(tmp_path)
    try:
        with connect(str(server.discovery), spawn=False) as client:
            client.matte(*small_job(), engine="classical")   # the worker threads exist now
            stopped_cleanly(server, sig)
    finally:
        server.stop()


def test_stop_during_a_job_cancels_it_and_the_queued_one(tmp_path):
    server = ServerProcess(tmp_path)
    running, errors = threading.Event(), {}

    def client(name, job):
        def progress(fraction, stage, message):
            if stage not in ("queued", "preparing", "loading_model"):
                running.set()
        try:
            with connect(str(server.discovery), spawn=False) as c:
                c.matte(*job, engine="classical", progress=progress if name == "first" else None)
        except ProtocolError as exc:
            errors[name] = exc
    try:
        first = threading.Thread(target=client, args=("first", long_job()))
        first.start()
        assert running.wait(60)
        second = threading.Thread(target=client, args=("second", small_job()))
        second.start()
        for _ in range(400):  # until the second job waits behind the first
            if "queue cpu position 1" in server.log.read_text():
                break
            threading.Event().wait(0.05)
        log = stopped_cleanly(server, signal.SIGTERM)
        first.join(30)
        second.join(30)
    finally:
        server.stop()
    assert errors["first"].code == "cancelled" and errors["second"].code == "cancelled", errors
    assert "the server is stopping" in errors["second"].message
    assert "1 running job cancelled" in log


def test_a_job_that_ignores_cancellation_does_not_hold_the_exit(tmp_path):
    """STOP_WAIT 0: the running job is not waited for; the server still leaves at once, status 0,
    without the traceback of a thread that outlives the event loop."""
    discovery, log_file = tmp_path / "server.json", tmp_path / "server.log"
    code = ("import sys, drip_core.server.app as app; app.STOP_WAIT = 0.0; "
            "from drip_core.server.__main__ import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, "--discovery-file", str(discovery),
                             "--log-file", str(log_file)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    server = ServerProcess.__new__(ServerProcess)
    server.proc, server.discovery, server.log = proc, discovery, log_file
    for _ in range(1200):
        if discovery.exists() or proc.poll() is not None:
            break
        threading.Event().wait(0.05)
    running = threading.Event()

    def client():
        try:
            with connect(str(discovery), spawn=False) as c:
                c.matte(*long_job(), engine="classical",
                        progress=lambda f, s, m: running.set() if s not in ("queued", "preparing") else None)
        except ProtocolError:
            pass
    worker = threading.Thread(target=client, daemon=True)
    worker.start()
    try:
        assert running.wait(60)
        log = stopped_cleanly(server, signal.SIGTERM)
    finally:
        server.stop()
    assert "did not stop within 0 s" in log
