"""An engine's per-job decisions travel with its result, never on the shared engine instance.

The server runs one queue per device; both can run the classical engine at once (an ``auto``
job whose DRIP model is unusable falls back to classical on the accelerator's queue while the
cpu queue runs a classical job). The engine instance is shared (the registry keeps it warm),
so anything a job left on it could be read by the other job.
"""
from __future__ import annotations

import threading

import numpy as np

import drip_protocol as P
from drip_core.server.job_cache import JobCache
from drip_core.server.jobs import DeviceWorker, Job


class _NoLoop:
    """Stands in for the event loop: a job's messages are delivered at once."""

    @staticmethod
    def call_soon_threadsafe(fn, *args):
        fn(*args)


def _scene(mixed: bool, seed: int):
    """A red disc on a blue background with an unknown ring around its edge: a veil whose ring
    holds mixtures of the two (``mixed``: the engine's transparency check says yes), or a crisp
    edge whose ring holds the two pure colours (it says no). Large enough that a small edit is
    re-solved locally."""
    rng = np.random.default_rng(seed)
    h = w = 480
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    wobble = 200 + 6 * np.sin(np.arctan2(yy - h / 2, xx - w / 2) * 9)
    alpha = np.clip((220 - r) / 40, 0, 1) if mixed else (r < wobble).astype(float)
    red, blue = np.array([0.9, 0.1, 0.1]), np.array([0.1, 0.2, 0.9])
    image = alpha[..., None] * red + (1 - alpha[..., None]) * blue + rng.normal(0, 0.02, (h, w, 3))
    image = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    trimap = np.where(r < 180, 255, np.where(r > 225, 0, 128)).astype(np.uint8)
    return image, trimap


def _job(image, trimap, cache_entry=None, job_id="j"):
    h, w = trimap.shape
    header = {"id": job_id, "width": w, "height": h, "image_format": "rgb8", "trimap_source": "trimap",
              "engine": "classical", "result_depth": 8}
    digest = P.image_digest(image, "rgb8", w, h)
    if cache_entry is not None:
        header.update(image_digest=digest, image_cached=True)
    spec = P.JobSpec.from_header(header, P.DEFAULT_MAX_PIXELS)
    job = Job(spec=spec, image=image if cache_entry is None else cache_entry.image, mask=trimap,
              loop=_NoLoop(), token="t", cached=cache_entry, held_bytes=image.nbytes)
    return job, digest


def _alpha_of(job, shape):
    while not job.events.empty():
        header, payload = job.events.get_nowait()
        if header["type"] == "error":
            raise AssertionError(header)
        if header["type"] == "result":
            return np.frombuffer(payload[1], np.uint8).reshape(shape)
    raise AssertionError("no result")


def _run_then_rerun(cache, first_worker, during_done=None):
    """The veil's job, then a rerun of it with a small white edit; ``during_done`` runs after
    the engine has finished the first job and before the server has taken its result."""
    veil, tri = _scene(True, 0)
    first, digest = _job(veil, tri)
    if during_done is not None:
        original = first.progress

        def progress(fraction, stage, message=""):
            if str(getattr(stage, "value", stage)) == "done":
                during_done()
            original(fraction, stage, message)

        first.progress = progress
    first_worker._process(first)
    _alpha_of(first, tri.shape)
    edited = tri.copy()
    edited[236:244, 436:444] = 0
    rerun, _ = _job(veil, edited, cache.get("t", digest), "rerun")
    first_worker._process(rerun)
    return _alpha_of(rerun, tri.shape)


def test_a_concurrent_job_on_the_other_queue_does_not_change_a_jobs_rerun():
    alone_cache = JobCache(1 << 30)
    alone = _run_then_rerun(alone_cache, DeviceWorker("accelerator", None, None, alone_cache))

    cache = JobCache(1 << 30)
    accelerator, cpu = DeviceWorker("accelerator", None, None, cache), DeviceWorker("cpu", None, None, cache)
    edge, edge_tri = _scene(False, 1)

    def the_other_queue_runs_a_job():
        other, _ = _job(edge, edge_tri, job_id="other")
        thread = threading.Thread(target=cpu._process, args=(other,))
        thread.start()
        thread.join()
        _alpha_of(other, edge_tri.shape)

    raced = _run_then_rerun(cache, accelerator, the_other_queue_runs_a_job)
    assert np.array_equal(raced, alone), np.abs(raced.astype(int) - alone).max()
