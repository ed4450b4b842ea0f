"""Jobs and the per-device FIFO workers that run them off the event loop.

A worker knows engines only through their interface (drip_core/engines/base.py) and the
registry: it builds the trimap, asks the registry for the job's engine, and either lets the
engine update the image's previous result (``Engine.rerun``) or runs the job in full.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from drip_protocol import JobSpec, ProtocolError, Stage, image_digest

from .. import trimaps
from ..boxes import Box, mask_bbox
from ..buffers import to_bytes
from ..edges import apply_edges, composite, grown_window
from ..engines import Engine, refining_engine, resolve_engine
from ..errors import Cancelled, is_out_of_memory
from ..region import JobRegion
from ..samples import dtype_of
from ..settings import settings
from .job_cache import CachedImage, JobCache, LastResult

log = logging.getLogger("drip.server")


@dataclass
class Job:
    spec: JobSpec              # the job as the client sent it ('auto' already replaced by the
                               # server's default)
    image: np.ndarray          # H x W x 3 uint8 / uint16 / float32: a view of the received bytes
    mask: np.ndarray           # uint8/uint16 HxW, turned into a trimap by the worker
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    token: str = ""                    # the connection's token: the cache's namespace
    cached: CachedImage | None = None  # the cache entry the image came from (None: it was sent)
    held_bytes: int = 0                # bytes the image keeps alive (the received payload)

    def release(self) -> None:
        """Drop the pixels once the job can no longer run (finished, failed or cancelled)."""
        self.image = self.mask = None
        self.cached = None

    @property
    def id(self) -> str:
        return self.spec.id

    def post(self, header: dict, payload=b"") -> None:
        """Thread-safe: hand a message to the connection that owns this job."""
        self.loop.call_soon_threadsafe(self.events.put_nowait, (header, payload))

    def progress(self, fraction: float, stage: Stage, message: str = "") -> None:
        self.post({"type": "progress", "id": self.id, "fraction": round(float(fraction), 4),
                   "stage": Stage(stage).value, "message": message})

    def check_cancel(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()


@dataclass
class Outcome:
    """A finished job's result and how it was reached."""
    last: LastResult           # the whole result, kept for the next job on this image
    how: str                   # 'full', 'local' (Engine.rerun) or 'unchanged'
    changed: Box | None        # a rerun: the rectangle whose pixels changed (None: a full run)
    engine_seconds: float
    notes: tuple = ()          # what the person should know of how the result was made (Matte.notes)


class DeviceWorker:
    """One queue per device: jobs run strictly one at a time, in arrival order."""

    def __init__(self, name: str, drip_model: str | None, log_file: str | None,
                 cache: JobCache | None = None):
        self.name = name
        self.cache = cache if cache is not None else JobCache(0)
        self.drip_model = drip_model
        self.log_file = log_file
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.running: Job | None = None
        limit_heap_arenas()  # before the worker thread and the engines' threads exist
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"drip-{name}")
        self.jobs_done = 0

    def position(self) -> int:
        return self.queue.qsize() + (1 if self.running is not None else 0)

    def submit(self, job: Job) -> int:
        ahead = self.position()
        self.queue.put_nowait(job)
        return ahead

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self.queue.get()
            if job.cancelled.is_set():
                job.post(ProtocolError("cancelled",
                                       "the job was cancelled before it started").to_header(job.id))
                continue
            self.running = job
            try:
                await loop.run_in_executor(self.executor, self._process, job)
            finally:
                self.running = None
                self.jobs_done += 1
            # A big job's temporaries are freed by now, but glibc keeps freed heap pages: give
            # them back, or a cancelled 24-megapixel job would leave the server hundreds of MB fat.
            await loop.run_in_executor(self.executor, trim_heap)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    # --- runs in the worker thread -----------------------------------------------------

    def _process(self, job: Job) -> None:
        """Run the job and post its result, or the one error frame it ends with."""
        try:
            self._run(job)
        except Cancelled:
            log.info("job %s cancelled", job.id)
            job.post(ProtocolError("cancelled", "the job was cancelled").to_header(job.id))
        except ProtocolError as exc:  # EngineError included
            log.info("job %s failed: %s: %s", job.id, exc.code, exc.message)
            exc.log_file = self.log_file
            job.post(exc.to_header(job.id))
        except Exception as exc:  # noqa: BLE001 - any engine bug must become an error frame
            job.post(self._crash_error(job, exc).to_header(job.id))

    def _run(self, job: Job) -> None:
        """1. the trimap, 2. the engine, 3. a rerun or a full run, 4. remember it, 5. send it."""
        started = time.perf_counter()
        spec = job.spec
        job.progress(0.0, Stage.PREPARING, "building the trimap")
        # (hashing the mask is only worth it when a next job may reuse the trimap)
        recipe = trimap_recipe(spec, job.mask) if self.cache.enabled else None
        trimap = self._trimap(job, recipe)
        job.progress(0.01, Stage.LOADING_MODEL, f"loading the {spec.engine} engine")
        engine, note = resolve_engine(spec.engine, drip_model=self.drip_model)
        job.progress(0.02, Stage.STARTING, note)
        region = JobRegion.around_unknown(job.image, trimap, engine.context_margin)  # checks the trimap
        outcome = self._reuse(job, engine, trimap, recipe) or self._full_run(job, engine, region, recipe)
        del region  # the crop's floats are not needed while the result is sent
        self._remember(job, outcome.last)
        seconds = time.perf_counter() - started
        log.info("job %s done: %dx%d, %s, %s run, image %s, %.2f s", job.id, spec.width, spec.height, note,
                 outcome.how, "from the cache" if job.cached is not None else "sent", seconds)
        job.post(*self._result_message(job, outcome, note, seconds))

    def _trimap(self, job: Job, recipe: tuple | None) -> np.ndarray:
        """The job's trimap: the image's last one when it was built from the same mask and settings
        (a preview's edge controls changed, nothing else: the smart band is not worked out again)."""
        spec = job.spec
        previous = job.cached.last if job.cached is not None else None
        if previous is not None and recipe is not None and previous.made_from == recipe:
            return previous.trimap
        return trimaps.build(spec.trimap_source, job.mask, spec.band_radius, job.image.shape, job.image,
                             engine=refining_engine())

    def _full_run(self, job: Job, engine: Engine, region: JobRegion, recipe: tuple | None) -> Outcome:
        start = time.perf_counter()
        _injected_fault(job.spec)
        matte = engine.run(region, progress=job.progress, cancel=job.cancelled.is_set)
        job.check_cancel()
        foreground, alpha = region.paste(matte.foreground, matte.alpha, dtype_of(job.spec.result_depth))
        last = LastResult(region.trimap, matte.engine or engine.name, job.spec.result_depth, foreground,
                          alpha, matte.rerun_state, made_from=recipe)
        return Outcome(last, "full", None, time.perf_counter() - start, tuple(matte.notes))

    def _reuse(self, job: Job, engine: Engine, trimap: np.ndarray, recipe: tuple | None) -> Outcome | None:
        """The image's last result as it is (same trimap), or updated by the engine after a trimap
        edit (a job that brings its own trimap: the person painted on it); None for a full run. A
        trimap the server builds from a selection is a new start (another object, band or
        feathering): solved afresh, never bent towards a result it does not refine."""
        spec = job.spec
        if not self.cache.enabled or "fault" in spec.options:  # a fault test's job must reach the engine
            return None
        previous = job.cached.last if job.cached is not None else None
        if previous is None or previous.engine != engine.name or previous.result_depth != spec.result_depth:
            return None
        start = time.perf_counter()
        if np.array_equal(previous.trimap, trimap):
            return Outcome(previous, "unchanged", NOTHING, 0.0)
        if spec.trimap_source != "trimap":
            return None
        rerun = engine.rerun(previous.rerun_state, job.image, trimap, previous.foreground, previous.alpha,
                             job.progress, job.cancelled.is_set)
        if rerun is None:
            return None
        last = LastResult(trimap, engine.name, spec.result_depth, rerun.foreground, rerun.alpha,
                          rerun.rerun_state, made_from=recipe)
        changed = _what_changed(previous, rerun.foreground, rerun.alpha, rerun.changed)
        return Outcome(last, "local", changed, time.perf_counter() - start)

    def _result_message(self, job: Job, outcome: Outcome, note: str, seconds: float) -> tuple[dict, list]:
        """The result frame: the whole result, or only the rectangle a rerun changed when the
        client holds the previous result (``base_result``)."""
        spec, last = job.spec, outcome.last
        # a result id names the matte as finished (edge controls, preview): a client holding
        # another gets the whole result, never a patch of a differently finished one
        extra = {"result_id": spec.result_id(last.result_id)} if self.cache.enabled else {}
        base = job.cached.last if self.cache.enabled and job.cached is not None else None
        window = (slice(None), slice(None))
        if (outcome.changed is not None and base is not None
                and spec.base_result == spec.result_id(base.result_id)):
            window = rows, cols = grown_window(outcome.changed, spec.edge.reach, last.alpha.shape)
            extra["patch"] = [cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start]
        planes = [*_finished(job, last), *([last.trimap] if spec.want_trimap else [])]
        payload = [to_bytes(np.ascontiguousarray(plane[window])) for plane in planes]
        header = {"type": "result", "id": job.id, "engine": last.engine, "note": note, "rerun": outcome.how,
                  "image_sent": job.cached is None, "seconds": round(seconds, 3),
                  "engine_seconds": round(outcome.engine_seconds, 3), "width": spec.width,
                  "height": spec.height, "result_depth": spec.result_depth, "has_trimap": spec.want_trimap,
                  **extra, **({"notes": list(outcome.notes)} if outcome.notes else {})}
        return header, payload

    def _crash_error(self, job: Job, exc: Exception) -> ProtocolError:
        """The error frame for an unexpected exception: out of memory, or an engine bug (logged)."""
        _free_accelerator_memory()
        if is_out_of_memory(exc):
            log.warning("job %s ran out of memory: %s", job.id, exc)
            return ProtocolError("out_of_memory", "the engine ran out of memory on this image",
                                 log_file=self.log_file)
        log.error("job %s crashed:\n%s", job.id, traceback.format_exc())
        return ProtocolError("engine_failed", f"the engine failed: {exc.__class__.__name__}: {exc}",
                             log_file=self.log_file)

    def _remember(self, job: Job, last: LastResult) -> None:
        """Keep the image and this result for the next job on it (a no-op when the cache is off).
        The digest is always the server's own: a client's must never decide what is stored."""
        if not self.cache.enabled:
            return
        spec = job.spec
        if job.cached is not None:
            entry = CachedImage(job.cached.image, job.cached.held_bytes, last)
            digest = spec.image_digest  # the cache's own key, under which the image was found
        else:
            entry = CachedImage(job.image, job.held_bytes or job.image.nbytes, last)
            digest = image_digest(job.image, spec.image_format, spec.width, spec.height)
        self.cache.put(job.token, digest, entry)


NOTHING = (slice(0, 0), slice(0, 0))  # an unchanged rerun's changed rectangle


def trimap_recipe(spec: JobSpec, mask: np.ndarray) -> tuple:
    """What a job's trimap is built from: the same recipe on the same image gives the same trimap."""
    return spec.trimap_source, spec.band_radius, hashlib.sha256(np.ascontiguousarray(mask)).hexdigest()


def _finished(job: Job, last: LastResult) -> tuple[np.ndarray, np.ndarray]:
    """The foreground and alpha a client gets: the matte with the job's edge controls applied,
    the foreground composited over the preview's background for a preview."""
    foreground, alpha = apply_edges(last.foreground, last.alpha, job.image, job.spec.edge)
    if job.spec.preview is not None:
        foreground = composite(foreground, alpha, job.image, job.spec.preview)
    return foreground, alpha


def _what_changed(previous: LastResult, foreground: np.ndarray, alpha: np.ndarray, box: Box) -> Box:
    """The bounding box of the pixels of ``box`` whose result differs from the previous one at the
    result's depth: far from the edit a re-solve moves alpha by less than a level, and the
    client need not be sent (nor GIMP write) what did not change."""
    differs = alpha[box] != previous.alpha[box]
    differs |= (foreground[box] != previous.foreground[box]).any(axis=2)
    inside = mask_bbox(differs, 0)
    if inside is None:
        return NOTHING
    return (slice(box[0].start + inside[0].start, box[0].start + inside[0].stop),
            slice(box[1].start + inside[1].start, box[1].start + inside[1].stop))


# Test hook (docs/reliability.md): with DRIP_MATTING_TEST_FAULTS=1 in the server's environment,
# a job whose options carry {"fault": NAME} fails the way a real engine can, so tests can check
# that the error code is stable and the server keeps serving. Ignored when the variable is unset.
def _injected_fault(spec: JobSpec) -> None:
    fault = spec.options.get("fault")
    if fault is None or not settings().test_faults:
        return
    if fault == "engine_error":
        raise RuntimeError("injected engine failure")
    if fault == "oom":
        hog = np.ones(64 << 20, np.uint8)  # 64 MB that the error path must give back
        raise MemoryError(f"injected: could not allocate after {hog.nbytes} bytes")
    if fault == "cuda_oom":
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")


_GLIBC = None
M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)
HEAP_ARENAS = 1


def _glibc():
    """glibc through ctypes, or False (another C library, another OS)."""
    global _GLIBC
    if _GLIBC is None:
        _GLIBC = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes
                libc = ctypes.CDLL("libc.so.6")
                libc.malloc_trim, libc.mallopt  # noqa: B018 - both must exist (musl has neither)
                _GLIBC = libc
            except (OSError, AttributeError):
                pass
    return _GLIBC


def limit_heap_arenas() -> None:
    """One malloc arena for the whole server. The engines' k-d searches and tiles run on
    short-lived threads; glibc gives threads arenas of their own (up to 8 per core), and what
    a job freed in those stayed resident after trim_heap: +60 MB after one 900 x 900 job in
    the reliability test (2 arenas: the same). Large arrays are mmapped anyway, so sharing
    one arena costs the threads little."""
    libc = _glibc()
    if libc:
        libc.mallopt(M_ARENA_MAX, HEAP_ARENAS)


def trim_heap() -> None:
    """Return freed heap memory to the OS (glibc's malloc_trim; a no-op elsewhere)."""
    libc = _glibc()
    if libc:
        libc.malloc_trim(0)


def _free_accelerator_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
