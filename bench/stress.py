"""Reliability stress runs (issue 7): fuzzing, load, soak and faults against the Drip server.

    .venv/bin/python bench/stress.py fuzz   --inputs 100000 --process-inputs 20000
    .venv/bin/python bench/stress.py load   --clients 16 --jobs 20
    .venv/bin/python bench/stress.py soak   --jobs 500
    .venv/bin/python bench/stress.py faults
    .venv/bin/python bench/stress.py all    --json results.json     # everything above

The test suite (tests/test_fuzz.py, tests/test_reliability.py) runs the same functions with
small counts. All traffic is on 127.0.0.1; every loop is bounded in count and in time.
Figures go to docs/reliability.md.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import drip_protocol as P  # noqa: E402
from bench.fuzzing import (  # noqa: E402
    HOST,
    _alive,
    _log,
    expected_alpha,
    fuzz_parser,
    fuzz_server_inprocess,
    fuzz_server_process,
    matting_case,
    rss_mb,
    run_valid_job,
)

# ----------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------

def percentile(values, q):
    return float(np.percentile(np.asarray(values, float), q)) if len(values) else float("nan")


class ServerProc:
    """A real `python -m drip_core.server` on loopback (like the tests' ServerProcess)."""

    def __init__(self, folder: Path, *args: str, env: dict | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        self.discovery = folder / "server.json"
        self.log = folder / "server.log"
        cmd = [sys.executable, "-m", "drip_core.server", "--discovery-file", str(self.discovery),
               "--log-file", str(self.log), *args]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not self.discovery.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        self.record = json.loads(self.discovery.read_text())

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self):
        return self.record["host"], self.record["port"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


def slow_case(size: int = 900):
    """A job that keeps the classical engine busy for seconds (a wide unknown band on noise)."""
    rng = np.random.default_rng(0)
    image = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    trimap = np.zeros((size, size), np.uint8)
    a, b = size // 9, size - size // 9
    trimap[a:b, a:b] = 128
    trimap[size // 3:2 * size // 3, size // 3:2 * size // 3] = 255
    return image, trimap


def job_header(w, h, image_format="rgb8", mask_format="y8", **extra):
    return {"type": "job", "id": uuid.uuid4().hex, "width": w, "height": h, "image_format": image_format,
            "mask_format": mask_format, **extra}


# Load: many concurrent clients, and a long sequential soak
# ----------------------------------------------------------------------------------------

def run_load(server: ServerProc, clients: int, jobs: int, size: int = 64, time_limit: float = 900.0) -> dict:
    """``clients`` concurrent connections x ``jobs`` jobs each; checks results, FIFO and heartbeats."""
    from drip_core.client import connect
    cases = [matting_case(size, seed) for seed in range(4)]
    expected = [expected_alpha(*c) for c in cases]
    results = collections.defaultdict(list)
    failures = []
    barrier = threading.Barrier(clients)
    deadline = time.monotonic() + time_limit

    def client(c):
        try:
            conn = connect(str(server.discovery), spawn=False)
        except Exception as exc:  # noqa: BLE001
            failures.append(f"client {c}: connect: {exc}")
            return
        with conn:
            barrier.wait(60)
            for j in range(jobs):
                if time.monotonic() > deadline:
                    failures.append(f"client {c}: time limit")
                    return
                k = (c + j) % len(cases)
                image, trimap = cases[k]
                stamps = [time.monotonic()]
                try:
                    _, alpha, info = conn.matte(image, trimap, engine="classical", return_info=True,
                                                progress=lambda *a, stamps=stamps: stamps.append(
                                                    time.monotonic()))
                except Exception as exc:  # noqa: BLE001
                    failures.append(f"client {c} job {j}: {exc.__class__.__name__}: {exc}")
                    continue
                stamps.append(time.monotonic())
                diff = int(np.abs(alpha.astype(int) - expected[k].astype(int)).max())
                results[c].append({"id": info["id"], "diff": diff, "latency": stamps[-1] - stamps[0],
                                   "max_gap": float(np.max(np.diff(stamps))),
                                   "engine_s": info["engine_seconds"]})

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(deadline - time.monotonic(), 1))
    wall = time.perf_counter() - start
    done = [r for rs in results.values() for r in rs]
    # FIFO: the cpu queue finished jobs in the order it accepted them (server log).
    log = _log(server)
    ours = {r["id"] for r in done}
    accepted = [m.group(1) for m in re.finditer(r"job (\w+) accepted: .* queue cpu ", log)
                if m.group(1) in ours]
    finished = [m.group(1) for m in re.finditer(r"job (\w+) (?:done|cancelled|failed)", log)
                if m.group(1) in ours]
    latencies = [r["latency"] for r in done]
    return {
        "clients": clients, "jobs_per_client": jobs, "jobs_submitted": clients * jobs,
        "jobs_completed": len(done),
        "jobs_lost": clients * jobs - len(done), "wrong_results": sum(r["diff"] > 1 for r in done),
        "max_alpha_diff": max((r["diff"] for r in done), default=None), "failures": failures[:8],
        "fifo_ok": accepted == finished and len(accepted) == len(done), "distinct_ids": len(ours),
        "max_heartbeat_gap_s": round(max((r["max_gap"] for r in done), default=0.0), 3),
        "latency_p50_s": round(percentile(latencies, 50), 3),
        "latency_p95_s": round(percentile(latencies, 95), 3),
        "latency_max_s": round(max(latencies, default=0.0), 3),
        "engine_s_mean": round(float(np.mean([r["engine_s"] for r in done])) if done else 0.0, 4),
        "wall_s": round(wall, 2), "jobs_per_s": round(len(done) / wall, 2), "image": f"{size}x{size}",
        "server_alive": _alive(server),
    }


def run_soak(server: ServerProc, jobs: int, size: int = 64, sample_every: int = 50, warmup: int = 50,
             reconnect_every: int = 10, time_limit: float = 1800.0) -> dict:
    """``jobs`` sequential jobs (a new connection every ``reconnect_every``); RSS sampled as it goes."""
    from drip_core.client import connect
    cases = [matting_case(size, seed) for seed in range(4)]
    expected = [expected_alpha(*c) for c in cases]
    samples, wrong, errors = [], 0, []
    conn = None
    start = time.perf_counter()
    rss_start = rss_mb(server.proc.pid)
    for i in range(jobs):
        if time.perf_counter() - start > time_limit:
            errors.append("time limit")
            break
        if conn is None or i % reconnect_every == 0:
            if conn is not None:
                conn.close()
            conn = connect(str(server.discovery), spawn=False)
        image, trimap = cases[i % 4]
        try:
            _, alpha = conn.matte(image, trimap, engine="classical")
            wrong += int(np.abs(alpha.astype(int) - expected[i % 4].astype(int)).max() > 1)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"job {i}: {exc}")
        if (i + 1) % sample_every == 0 or i + 1 == min(warmup, jobs):
            samples.append((i + 1, round(rss_mb(server.proc.pid), 1)))
    if conn is not None:
        conn.close()
    wall = time.perf_counter() - start
    after_warm = [mb for k, mb in samples if k >= min(warmup, jobs)]
    return {"jobs": jobs, "completed": jobs - len(errors), "wrong_results": wrong, "errors": errors[:5],
            "rss_start_mb": round(rss_start, 1), "rss_samples": samples,
            "rss_after_warmup_mb": after_warm[0] if after_warm else None,
            "rss_end_mb": samples[-1][1] if samples else None,
            "rss_growth_after_warmup_mb": round(after_warm[-1] - after_warm[0], 1) if after_warm else None,
            "wall_s": round(wall, 2), "jobs_per_s": round(jobs / wall, 2), "server_alive": _alive(server)}


# ----------------------------------------------------------------------------------------
# Faults
# ----------------------------------------------------------------------------------------

def wait_for(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


# progress stages before the engine itself works on a job
WAITING_STAGES = ("queued", "preparing", "loading model", "starting", "None")

CLIENT_SCRIPT = r"""
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import drip_protocol as P
from bench.stress import slow_case
image, trimap = slow_case(int(sys.argv[3]))
with P.Connection("127.0.0.1", int(sys.argv[2]), sys.argv[4]) as c:
    h, w = trimap.shape
    job = {"type": "job", "id": sys.argv[5], "width": w, "height": h, "image_format": "rgb8",
           "mask_format": "y8", "engine": "classical"}
    P.send_frame(c.sock, job, [image.tobytes(), trimap.tobytes()])
    print("sent", flush=True)
    while True:
        header, _ = P.recv_frame(c.sock, 1 << 30)
        print(header["type"], header.get("stage"), flush=True)
"""


def fault_client_killed(server: ServerProc, size: int = 900) -> dict:
    """A client process is SIGKILLed while its big job runs: the job is cancelled, memory comes back."""
    run_valid_job(str(server.discovery))
    time.sleep(0.3)
    baseline = rss_mb(server.proc.pid)
    job_id = "killed-" + uuid.uuid4().hex[:8]
    proc = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, str(REPO), str(server.address[1]),
                             str(size), server.record["token"], job_id], stdout=subprocess.PIPE, text=True)
    try:
        # wait until the engine is really working on it (the progress stage 'alpha' arrives)
        running = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            parts = line.split(maxsplit=1)
            if parts[0] == "progress" and parts[1].strip() not in WAITING_STAGES:
                running = True
                break
        time.sleep(0.5)
        peak = rss_mb(server.proc.pid)
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    cancelled = wait_for(lambda: f"job {job_id} cancelled" in _log(server), 30)
    cancel_s = time.monotonic() - killed_at
    after = (wait_for(lambda: rss_mb(server.proc.pid) < baseline + 30 and rss_mb(server.proc.pid), 15)
             or rss_mb(server.proc.pid))
    ok_after = run_valid_job(str(server.discovery))
    return {"ok": bool(running and cancelled and after < baseline + 30 and ok_after["ok"] and _alive(server)),
            "engine_was_running": running, "cancelled_in_log": bool(cancelled),
            "cancel_seconds": round(cancel_s, 2), "rss_baseline_mb": round(baseline, 1),
            "rss_peak_mb": round(peak, 1), "rss_after_mb": round(after, 1),
            "done_in_log": f"job {job_id} done" in _log(server), "valid_job_after": ok_after["ok"]}


def fault_server_killed(server: ServerProc, size: int = 900) -> dict:
    """The server is SIGKILLed mid-job: the Python client raises connection_lost promptly."""
    from drip_core.client import connect
    image, trimap = slow_case(size)
    outcome = {}
    stages = []

    def job():
        try:
            with connect(str(server.discovery), spawn=False) as c:
                c.matte(image, trimap, engine="classical", progress=lambda f, s, m: stages.append(s))
            outcome["result"] = "completed (unexpected)"
        except P.ProtocolError as exc:
            outcome["code"] = exc.code
            outcome["text"] = exc.user_text()
        except Exception as exc:  # noqa: BLE001
            outcome["crash"] = f"{exc.__class__.__name__}: {exc}"
        outcome["at"] = time.monotonic()

    t = threading.Thread(target=job, daemon=True)
    t.start()
    wait_for(lambda: any(s not in WAITING_STAGES for s in stages), 60)
    killed_at = time.monotonic()
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    t.join(30)
    return {"ok": outcome.get("code") == "connection_lost", "code": outcome.get("code"),
            "crash": outcome.get("crash"),
            "report_seconds": round(outcome.get("at", killed_at) - killed_at, 2),
            "message": outcome.get("text", "")[:160]}


def fault_engine(server: ServerProc) -> dict:
    """Injected engine failures (needs DRIP_MATTING_TEST_FAULTS=1): stable codes, the server stays up."""
    from drip_core.client import connect
    image, trimap = matting_case(64, 2)
    h, w = trimap.shape
    expected = {"engine_error": "engine_failed", "oom": "out_of_memory", "cuda_oom": "out_of_memory"}
    got = {}
    run_valid_job(str(server.discovery))
    baseline = rss_mb(server.proc.pid)
    rss_after = {}
    for fault in expected:
        with connect(str(server.discovery), spawn=False) as c:
            job = {"id": uuid.uuid4().hex, "width": w, "height": h, "image_format": "rgb8",
                   "mask_format": "y8", "engine": "classical", "options": {"fault": fault}}
            try:
                c.connection.run_job(job, image.tobytes(), trimap.tobytes())
                got[fault] = "result"
            except P.ProtocolError as exc:
                got[fault] = exc.code
            # the same connection keeps working after the failure
            after = c.matte(image, trimap, engine="classical")[1]
        rss_after[fault] = round(rss_mb(server.proc.pid), 1)
    still = run_valid_job(str(server.discovery))
    return {"ok": got == expected and still["ok"] and _alive(server) and after is not None
            and max(rss_after.values()) < baseline + 30,
            "codes": got, "rss_baseline_mb": round(baseline, 1), "rss_after_mb": rss_after,
            "valid_job_after": still["ok"], "server_alive": _alive(server)}


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _free_port() -> int:
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fault_stale_discovery(folder: Path, kind: str) -> dict:
    """A stale discovery file -> connect(spawn=True) notices and starts a fresh server.

    kind: 'dead_pid' (the recorded server is gone), 'port_reused' (another program answers
    on the port with HTTP, our live pid), 'port_silent' (it accepts and never answers).
    """
    from drip_core.client import connect
    folder.mkdir(parents=True, exist_ok=True)
    discovery = folder / "server.json"
    listener = None
    stop = threading.Event()
    if kind == "dead_pid":
        P.write_discovery(str(discovery), {"host": HOST, "port": _free_port(), "token": "stale",
                                           "pid": _dead_pid()})
    else:
        listener = socket.socket()
        listener.bind((HOST, 0))
        listener.listen()
        listener.settimeout(0.2)
        held = []

        def other_program():
            while not stop.is_set():
                try:
                    c, _ = listener.accept()
                except OSError:
                    continue
                if kind == "port_reused":
                    try:
                        c.settimeout(2)
                        c.recv(100)
                        c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                    except OSError:
                        pass
                    c.close()
                else:
                    held.append(c)  # never answers

        threading.Thread(target=other_program, daemon=True).start()
        P.write_discovery(str(discovery), {"host": HOST, "port": listener.getsockname()[1], "token": "stale",
                                           "pid": os.getpid()})
    start = time.monotonic()
    client = None
    try:
        client = connect(str(discovery), spawn=True, log_file=str(folder / "server.log"),
                         server_args=["--idle-timeout", "60"], wait=60)
        seconds = time.monotonic() - start
        record = P.read_discovery(str(discovery))
        image, trimap = matting_case(48, 3)
        _, alpha = client.matte(image, trimap, engine="classical")
        ok = record is not None and record["pid"] == client.server_info["pid"] and alpha.shape == trimap.shape
        return {"ok": ok, "kind": kind, "seconds_to_fresh_server": round(seconds, 2),
                "new_server_pid": client.server_info["pid"]}
    except P.ProtocolError as exc:
        return {"ok": False, "kind": kind, "error": f"{exc.code}: {exc.message}"}
    finally:
        stop.set()
        if client is not None:
            try:
                client.shutdown()
            except P.ProtocolError:
                pass
            client.close()
        if listener is not None:
            listener.close()


SPAWN_SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[1])
from drip_core.client import connect
c = connect(sys.argv[2], spawn=True, log_file=sys.argv[3], server_args=["--idle-timeout", "60"], wait=60)
print(c.server_info["pid"], c.connection.request({"type": "ping"})["type"], flush=True)
c.close()
"""


def fault_concurrent_spawn(folder: Path, n: int = 3) -> dict:
    """``n`` clients start at once with no server running: all connect, to one single server."""
    from drip_core.client import connect
    folder.mkdir(parents=True, exist_ok=True)
    discovery = folder / "server.json"
    procs = [subprocess.Popen([sys.executable, "-c", SPAWN_SCRIPT, str(REPO), str(discovery),
                               str(folder / "server.log")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        outs.append((p.returncode, out.strip(), err.strip()[-300:]))
    pids = {o[1].split()[0] for o in outs if o[0] == 0 and o[1].endswith("pong")}
    alive = []
    for pid in pids:
        alive.append(P.pid_alive(int(pid)))
    # exactly one server answers on this discovery file; shut it down
    try:
        with connect(str(discovery), spawn=False) as c:
            server_pid = c.server_info["pid"]
            c.shutdown()
    except P.ProtocolError:
        server_pid = None
    ok = all(o[0] == 0 for o in outs) and len(pids) == 1 and str(server_pid) in pids
    return {"ok": ok, "clients": n, "distinct_server_pids": len(pids),
            "client_errors": [o[2] for o in outs if o[0] != 0][:3]}


def run_faults(folder: Path, slow: bool = True) -> dict:
    out = {}
    s = ServerProc(folder / "killed-client")
    try:
        out["client_killed_mid_job"] = fault_client_killed(s)
    finally:
        s.stop()
    s = ServerProc(folder / "killed-server")
    try:
        out["server_killed_mid_job"] = fault_server_killed(s)
    finally:
        s.stop()
    s = ServerProc(folder / "engine-faults", env={"DRIP_MATTING_TEST_FAULTS": "1"})
    try:
        out["engine_faults"] = fault_engine(s)
    finally:
        s.stop()
    for kind in ("dead_pid", "port_reused") + (("port_silent",) if slow else ()):
        out[f"stale_{kind}"] = fault_stale_discovery(folder / f"stale-{kind}", kind)
    out["concurrent_spawn"] = fault_concurrent_spawn(folder / "spawn", 4)
    return out


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("fuzz", "load", "soak", "faults", "all"))
    ap.add_argument("--inputs", type=int, default=100_000, help="in-process fuzz inputs (and parser inputs)")
    ap.add_argument("--process-inputs", type=int, default=20000,
                    help="fuzz inputs sent to a real server process")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=20, help="jobs per client (load)")
    ap.add_argument("--size", type=int, default=192,
                    help="load jobs are SIZE x SIZE (192: a job waits > 1 s behind 15 others)")
    ap.add_argument("--soak-jobs", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="write all figures here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("drip.server").setLevel(logging.ERROR)  # the fuzz makes many warnings
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "cpus": os.cpu_count()}
    failed = False
    with tempfile.TemporaryDirectory(prefix="drip-stress-") as tmp:
        tmp = Path(tmp)
        if args.what in ("fuzz", "all"):
            report["fuzz_parser"] = r = fuzz_parser(args.inputs, args.seed)
            print("parser:", json.dumps(r), flush=True)
            failed |= r["crashes"] > 0
            report["fuzz_inprocess"] = r = fuzz_server_inprocess(args.inputs, args.seed, str(tmp))
            print("in-process server:", json.dumps(r), flush=True)
            failed |= bool(r["crashes"] or r["hangs"] or r["internal_errors"] or r["bad_replies"]
                           or not r["valid_job_after"]["ok"])
            s = ServerProc(tmp / "fuzz-proc")
            try:
                report["fuzz_process"] = r = fuzz_server_process(s, args.process_inputs, args.seed + 1)
            finally:
                s.stop()
            print("server process:", json.dumps(r), flush=True)
            failed |= bool(r["hangs"] or r["internal_errors"] or r["server_died"]
                           or not r["valid_job_after"]["ok"])
        if args.what in ("load", "all"):
            s = ServerProc(tmp / "load")
            try:
                report["load"] = r = run_load(s, args.clients, args.jobs, size=args.size)
            finally:
                s.stop()
            print("load:", json.dumps(r), flush=True)
            failed |= bool(r["jobs_lost"] or r["wrong_results"] or not r["fifo_ok"]
                           or r["max_heartbeat_gap_s"] > 2.0)
        if args.what in ("soak", "all"):
            s = ServerProc(tmp / "soak")
            try:
                report["soak"] = r = run_soak(s, args.soak_jobs)
            finally:
                s.stop()
            print("soak:", json.dumps(r), flush=True)
            failed |= bool(r["errors"] or r["wrong_results"])
        if args.what in ("faults", "all"):
            report["faults"] = r = run_faults(tmp / "faults")
            for name, res in r.items():
                print(f"fault {name}:", json.dumps(res), flush=True)
                failed |= not res["ok"]
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    print("FAILED" if failed else "ALL OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
