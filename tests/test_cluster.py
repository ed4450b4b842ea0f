"""Batch matting on Ray (issue 15): a real local Ray instance with 2 CPUs, real drip-matte
processes, real files. One Ray instance serves the whole module (starting one takes seconds);
drip-matte joins it as a second driver, as it would join a real cluster.

Inputs are small generated scenes (drip_core.demo_scene: exact, licence-clean, no ../shared
needed), so these tests always run where the 'cluster' extra is installed.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from drip_core.cluster import atomic
from drip_core.cluster import jobs as batch
from drip_core.cluster.report import Report

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (pip install -e '.[cluster]')")
N_IMAGES = 20


def drip_matte(*args, env=None, timeout=180):
    full_env = dict(os.environ, PYTHONPATH=_pythonpath(), **(env or {}))
    return subprocess.run([sys.executable, "-m", "drip_core.cli", *map(str, args)], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def _pythonpath() -> str:
    # drip-matte and every Ray worker must import this checkout, not an installed copy
    rest = os.environ.get("PYTHONPATH", "")
    return str(REPO) + (os.pathsep + rest if rest else "")


def write_scenes(folder: Path, n: int, width: int = 120, height: int = 90, first_seed: int = 0) -> Path:
    """n generated scenes: in/ (photos), tri/ (trimaps), mask/ (selection masks)."""
    from drip_core.demo_scene import make_scene
    for sub in ("in", "tri", "mask"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, trimap, alpha, _ = make_scene(width=width, height=height, seed=first_seed + i, band=2)
        name = f"img{i:02d}.png"
        Image.fromarray(image).save(folder / "in" / name)
        Image.fromarray(trimap).save(folder / "tri" / name)
        Image.fromarray(((alpha >= 0.5) * 255).astype(np.uint8)).save(folder / "mask" / name)
    return folder


def outputs(out: Path) -> dict[str, bytes]:
    return {f"{kind}/{p.name}": p.read_bytes() for kind in batch.OUTPUT_KINDS
            for p in sorted((out / kind).glob("*")) if p.is_file()}


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return write_scenes(tmp_path_factory.mktemp("scenes"), N_IMAGES)


@pytest.fixture(scope="module")
def local_reference(scenes, tmp_path_factory):
    """The local (non-Ray) batch's outputs for the trimap folder: what Ray must reproduce."""
    out = tmp_path_factory.mktemp("local") / "out"
    r = drip_matte("--input-dir", scenes / "in", "--trimap-dir", scenes / "tri", "--output-dir", out,
                   "--engine", "classical")
    assert r.returncode == 0, r.stderr
    assert len(outputs(out)) == 2 * N_IMAGES
    return out


@pytest.fixture(scope="module")
def cluster():
    """A real Ray instance: 2 CPUs, loopback only, with the dashboard (Ray's state API needs it)."""
    if not HAVE_RAY:
        pytest.skip("Ray is not installed (pip install -e '.[cluster]')")
    from drip_core.cluster.ray_runner import LOOPBACK_ENV
    saved = {k: os.environ.get(k) for k in (LOOPBACK_ENV, "PYTHONPATH")}
    os.environ[LOOPBACK_ENV] = "0"           # read when ray is imported: before the import
    os.environ["PYTHONPATH"] = _pythonpath()  # inherited by the raylet, hence by every worker
    import logging

    import ray
    ray.init(address="local", num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1",
             logging_level=logging.WARNING, log_to_driver=False)
    try:
        address = ray.get_runtime_context().gcs_address
        assert address.startswith("127.0.0.1:"), address
        yield address
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ------------------------------------------------------------------ without Ray (fast)

def test_plan_skips_only_complete_outputs_and_refuses_name_clashes(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "tri").mkdir()
    for name in ("a.png", "b.png", "c.png", "c.jpg", "d.png"):
        (tmp_path / "in" / name).write_bytes(b"x")
    jobs = batch.make_jobs(str(tmp_path / "in"), str(tmp_path / "tri"), "trimap", 0, str(tmp_path / "out"))
    png = batch.encode_png(np.zeros((4, 4), np.uint8))
    for kind in batch.OUTPUT_KINDS:
        atomic.write_bytes(str(tmp_path / "out" / kind / "a.png"), png)      # complete
    atomic.write_bytes(str(tmp_path / "out" / "alpha" / "b.png"), png)      # foreground missing
    for kind in batch.OUTPUT_KINDS:                                          # truncated alpha
        atomic.write_bytes(str(tmp_path / "out" / kind / "d.png"), png if kind == "foreground" else png[:-5])
    plan = batch.plan(jobs)
    assert plan.skipped == ["a.png"]
    assert [j.name for j in plan.jobs] == ["b.png", "c.jpg", "d.png"]
    assert [name for name, _ in plan.clashes] == ["c.png"]  # c.jpg and c.png both write c.png
    assert ([j.name for j in batch.plan(jobs, skip_complete=False).jobs]
            == ["a.png", "b.png", "c.jpg", "d.png"])


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "x.png"
    atomic.write_bytes(str(target), b"first")
    atomic.write_bytes(str(target), b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.png"]
    # a writer killed before its rename leaves only a hidden temporary file, removed later
    Path(atomic.temp_name(str(target))).write_bytes(b"half")
    assert batch.list_inputs(str(target.parent)) == ["x.png"]  # never taken for an input
    assert atomic.remove_stale_temps(str(target.parent)) == 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.png"]


def test_uri_paths_through_pyarrow(tmp_path):
    """file:// goes through the same pyarrow code as s3:// or gs:// (only local folders are tested)."""
    pytest.importorskip("pyarrow")
    scenes = write_scenes(tmp_path, 2)
    uri = lambda p: "file://" + str(p)  # noqa: E731
    jobs = batch.make_jobs(uri(scenes / "in"), uri(scenes / "mask"), "mask", 6, uri(tmp_path / "out"))
    assert [j.name for j in jobs] == ["img00.png", "img01.png"]
    results = [batch.run_job(j) for j in jobs]
    assert all(r["status"] == "done" for r in results), results
    assert batch.plan(jobs).skipped == ["img00.png", "img01.png"]
    assert sorted(p.name for p in (tmp_path / "out" / "alpha").iterdir()) == ["img00.png", "img01.png"]
    bad = batch.Job("nope.png", uri(tmp_path / "nope.png"), uri(scenes / "mask" / "img00.png"), "mask", 6,
                    uri(tmp_path / "out"))
    assert batch.run_job(bad)["code"] == "bad_image"


def test_each_failure_has_its_code(tmp_path):
    scenes = write_scenes(tmp_path, 1)
    image = np.asarray(Image.open(scenes / "in" / "img00.png"))
    masks = {"all.png": np.full(image.shape[:2], 255, np.uint8),
             "none.png": np.zeros(image.shape[:2], np.uint8)}
    for name, mask in masks.items():
        shutil.copy(scenes / "in" / "img00.png", scenes / "in" / name)
        Image.fromarray(mask).save(scenes / "mask" / name)
    shutil.copy(scenes / "in" / "img00.png", scenes / "in" / "orphan.png")
    jobs = {j.name: j for j in batch.make_jobs(str(scenes / "in"), str(scenes / "mask"), "mask", 4,
                                                 str(tmp_path / "out"))}
    codes = {name: batch.run_job(job).get("code") for name, job in jobs.items()}
    assert codes == {"all.png": "no_unknown", "none.png": "empty_selection", "orphan.png": "missing_trimap",
                     "img00.png": None}
    assert sorted(p.name for p in (tmp_path / "out" / "alpha").iterdir()) == ["img00.png"]


def test_report_counts_each_image_once(tmp_path):
    rep = Report(str(tmp_path), mode="ray", engine="classical", total=3, skipped=["c.png"])
    rep.add({"image": "a.png", "status": "done", "seconds": 0.1})
    rep.add({"image": "a.png", "status": "done", "seconds": 0.2})  # a retried task's second answer
    rep.add(batch.failure("b.png", "bad_image", "not an image file"))
    data = json.loads(Path(rep.write()).read_text())
    assert (data["total"], data["done"], data["skipped"], data["failed"]) == (3, 1, 1, 1)
    assert data["failures"] == [{"image": "b.png", "code": "bad_image", "message": "not an image file"}]
    assert "2/3 images matted" in rep.summary() and "1 failed" in rep.summary()


def test_batch_argument_errors(tmp_path):
    from drip_core.cli import main
    d = str(tmp_path)
    assert main(["--input-dir", d, "--trimap-dir", d, "--mask-dir", d, "--output-dir", d]) == 2
    assert main(["--input-dir", d, "--trimap-dir", d, "--output-dir", d, "--ray", "--server", "auto"]) == 2
    with pytest.raises(SystemExit) as bad_band:  # argparse refuses it, with a usage line
        main(["--input-dir", d, "--mask-dir", d, "--output-dir", d, "--band-radius", "-1"])
    assert bad_band.value.code == 2
    # as a user runs it (python -m): errors raised inside drip_core.cluster are one line, exit 2
    r = drip_matte("--input-dir", tmp_path / "absent", "--trimap-dir", d, "--output-dir", d, "--ray")
    assert r.returncode == 2 and r.stderr.strip().endswith(f"not a folder: {tmp_path / 'absent'}."), r.stderr


# ------------------------------------------------------------------------ with Ray

@needs_ray
def test_ray_batch_is_byte_identical_to_the_local_batch(cluster, scenes, local_reference, tmp_path):
    out = tmp_path / "out"
    # --ray auto: the cluster named by RAY_ADDRESS
    r = drip_matte("--input-dir", scenes / "in", "--trimap-dir", scenes / "tri", "--output-dir", out,
                   "--engine", "classical", "--ray", "auto", env={"RAY_ADDRESS": cluster})
    assert r.returncode == 0, r.stderr
    assert outputs(out) == outputs(local_reference)
    rep = report(out)
    assert (rep["mode"], rep["total"], rep["done"], rep["failed"]) == ("ray", N_IMAGES, N_IMAGES, 0)
    assert rep["ray"]["cpus"] == 2 and "CPU tasks" in rep["ray"]["workers"]
    assert f"{N_IMAGES}/{N_IMAGES} images matted" in r.stderr


@needs_ray
def test_ray_client_address(cluster, scenes, local_reference, tmp_path):
    """--ray ray://HOST:PORT: through a Ray Client server in front of the same instance."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # legacy mode: the client server is itself the driver. (Proxy mode, what `ray start --head`
    # runs, starts a server per client, which failed now and then under this machine's load.)
    server = subprocess.Popen([sys.executable, "-m", "ray.util.client.server", "--address", cluster, "--host",
                               "127.0.0.1", "--port", str(port), "--mode", "legacy"], cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=_pythonpath()), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert (server.poll() is None
                        and time.monotonic() < deadline), "the Ray Client server did not start"
                time.sleep(0.3)
        out = tmp_path / "out"
        r = drip_matte("--input-dir", scenes / "in", "--trimap-dir", scenes / "tri", "--output-dir", out,
                       "--engine", "classical", "--ray", f"ray://127.0.0.1:{port}")
        assert r.returncode == 0, r.stderr
        assert outputs(out) == outputs(local_reference)
        assert report(out)["ray"]["address"] == f"ray://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@needs_ray
def test_masks_with_failures_then_a_rerun_recomputes_exactly_what_was_deleted(cluster, scenes, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(scenes / "in", data / "in")
    shutil.copytree(scenes / "mask", data / "mask")
    (data / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a picture")  # corrupt
    shutil.copy(data / "mask" / "img00.png", data / "mask" / "broken.png")
    Image.open(scenes / "mask" / "img03.png").resize((60, 45)).save(data / "mask" / "img03.png")  # wrong size
    args = ["--input-dir", data / "in", "--mask-dir", data / "mask", "--band-radius", "4", "--engine",
            "classical"]

    local = drip_matte(*args, "--output-dir", tmp_path / "local")
    out = tmp_path / "ray"
    r = drip_matte(*args, "--output-dir", out, "--ray", cluster)
    assert local.returncode == 1 and r.returncode == 1, r.stderr  # something failed: non-zero exit
    expected = {f"{k}/img{i:02d}.png" for k in batch.OUTPUT_KINDS for i in range(N_IMAGES) if i != 3}
    assert set(outputs(out)) == expected
    assert outputs(out) == outputs(tmp_path / "local")
    rep = report(out)
    assert ({f["image"]: f["code"] for f in rep["failures"]}
            == {"broken.png": "bad_image", "img03.png": "bad_trimap"})
    assert "but the image is 120x90" in next(f["message"] for f in rep["failures"]
                                             if f["image"] == "img03.png")
    assert ((rep["total"], rep["done"], rep["failed"], rep["band_radius"])
            == (N_IMAGES + 1, N_IMAGES - 1, 2, 4))
    assert "broken.png" in r.stderr and "2 failed" in r.stderr

    # Delete three outputs (one alpha, one foreground, one pair); the rerun, on a Ray instance of
    # its own (--ray alone), recomputes exactly those three images and leaves the rest alone.
    (out / "alpha" / "img05.png").unlink()
    (out / "foreground" / "img07.png").unlink()
    (out / "alpha" / "img11.png").unlink()
    (out / "foreground" / "img11.png").unlink()
    redone = ("img05.png", "img07.png", "img11.png")
    before = {p: os.stat(out / p).st_mtime_ns for p in outputs(out) if not p.endswith(redone)}
    r2 = drip_matte(*args, "--output-dir", out, "--ray", "--ray-cpus", "2")
    assert r2.returncode == 1, r2.stderr  # the two bad inputs still fail, and say so
    rep2 = report(out)
    assert rep2["done_images"] == list(redone)
    assert rep2["skipped"] == N_IMAGES - 4 and rep2["failed"] == 2
    assert {p: os.stat(out / p).st_mtime_ns for p in before} == before  # the other images: untouched
    assert outputs(out) == outputs(tmp_path / "local")
    assert rep2["ray"]["address"] == "local"


@needs_ray
def test_a_worker_killed_mid_run_still_yields_every_output_once(cluster, tmp_path):
    from ray.util.state import list_tasks
    n = 6
    # a few seconds per image: long enough that a task the state API still lists as running is really
    # running when its worker is killed (the API lags the workers by about a second)
    data = write_scenes(tmp_path / "data", n, width=1200, height=900, first_seed=100)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=_pythonpath())
    proc = subprocess.Popen([sys.executable, "-m", "drip_core.cli", "--input-dir", data / "in",
                             "--trimap-dir", data / "tri", "--output-dir", out, "--engine", "classical",
                             "--ray", cluster],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 90
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            # this test's cluster by its address (another Ray on the machine must not confuse it)
            for task in list_tasks(address=cluster, filters=[("state", "=", "RUNNING")], timeout=10):
                if (task.name or "").startswith("drip-matte:") and task.worker_pid:
                    os.kill(task.worker_pid, signal.SIGKILL)
                    killed = task
                    break
            time.sleep(0.2)
        stdout, stderr = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no running matting task was seen to kill"
    assert proc.returncode == 0, stderr
    names = [f"img{i:02d}.png" for i in range(n)]
    for kind in batch.OUTPUT_KINDS:
        assert sorted(p.name for p in (out / kind).iterdir()) == names  # once each, no temporary files
    rep = report(out)
    assert rep["done_images"] == names and rep["failed"] == 0
    # Ray really retried the killed task: a later attempt of it shows up in the state API (task
    # events reach it asynchronously, so give it a moment on a loaded machine)
    deadline = time.monotonic() + 30
    while True:
        attempts = list_tasks(address=cluster, filters=[("name", "=", killed.name)], timeout=10)
        if any(t.attempt_number > killed.attempt_number for t in attempts) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert any(t.attempt_number > killed.attempt_number for t in attempts), attempts


@needs_ray
def test_tiny_drip_model_runs_in_cpu_actors(cluster, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from drip_core.engines.drip.model.convert import convert_sd2
    from drip_core.engines.drip.testing import TINY_DECODER_CONFIG, make_tiny_sd2

    model = tmp_path / "model"
    convert_sd2(make_tiny_sd2(str(tmp_path / "sd2")), str(model), decoder_config=TINY_DECODER_CONFIG)
    data = write_scenes(tmp_path / "data", 3, width=64, height=48, first_seed=200)
    # the cluster was started without these: drip-matte forwards its DRIP_MATTING_* settings
    env = {"DRIP_MATTING_ALLOW_UNTRAINED": "1", "DRIP_MATTING_STEPS": "1"}
    args = ["--input-dir", data / "in", "--trimap-dir", data / "tri", "--engine", "drip", "--drip-model",
            model]
    r = drip_matte(*args, "--output-dir", tmp_path / "ray", "--ray", cluster, env=env)
    assert r.returncode == 0, r.stderr
    rep = report(tmp_path / "ray")
    assert rep["done"] == 3 and rep["ray"]["actors"] == 1  # no GPU: one CPU actor with both cores
    assert rep["ray"]["actor"] == {"name": "drip", "device": "cpu", "model": str(model)}
    local = drip_matte(*args, "--output-dir", tmp_path / "local", env=env)
    assert local.returncode == 0, local.stderr
    ray_out, local_out = outputs(tmp_path / "ray"), outputs(tmp_path / "local")
    assert set(ray_out) == set(local_out) and len(ray_out) == 6
    for key in ray_out:  # same model, seed and steps; allow for thread-count rounding on the CPU
        a = np.asarray(Image.open(tmp_path / "ray" / key), dtype=int)
        b = np.asarray(Image.open(tmp_path / "local" / key), dtype=int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 2, key
