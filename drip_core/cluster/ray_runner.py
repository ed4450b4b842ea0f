"""The Ray driver of ``drip-matte --input-dir ... --ray [ADDRESS]``.

* classical engine: one Ray task per image (``num_cpus=1``), retried by Ray when its worker
  process dies; the engine is built once per worker process (the registry keeps it warm);
* DRIP (and ``auto`` with a model configured): ``MatteActor`` s that load the model once and
  matte small batches of images, one actor per GPU (``num_gpus=1``), or CPU actors where the
  cluster has no GPU; a dead actor is restarted by Ray and its batch retried.

The driver holds file names only and keeps a bounded number of jobs in flight, so memory is
a few images per worker whatever the catalogue size; workers read inputs and write outputs
themselves (shared folders or object storage on a real cluster).
"""
from __future__ import annotations

import logging
import math
import os
from collections import deque

from drip_protocol import ProtocolError

from ..errors import command_line_text
from .jobs import Job, failure, run_job

# On Linux Ray binds its servers to every interface and advertises the machine's outward IP.
# This flag (meant for laptops) makes a single-machine instance use 127.0.0.1 only; it must be
# set before ``import ray``. Only used for the instance drip-matte starts itself.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# The driver's engine settings (steps, samples, untrained-model opt-in ...) travel to workers.
FORWARD_PREFIX = "DRIP_MATTING_"
BATCH_SIZE = 4          # images per actor call: amortises the call, keeps the actor busy
IN_FLIGHT_PER_SLOT = 2  # queued work per CPU / actor: the next item is ready when one finishes
ACTOR_ATTEMPTS = 3      # a batch is given to another actor at most this many times
CPU_ACTOR_CPUS = 4      # CPU fallback: threads per DRIP actor (one model copy per 4 cores)


class MatteActor:
    """Holds one engine (the model is loaded once) and mattes batches of jobs."""

    def __init__(self, engine_name: str, drip_model: str | None, device: str | None):
        from ..engines.registry import get_engine
        self.error = None
        try:
            self.engine = get_engine(engine_name, drip_model=drip_model, device=device)
        except ProtocolError as exc:  # every image then fails with the engine's code, nothing crashes
            self.engine, self.error = None, (exc.code, command_line_text(exc))

    def describe(self) -> dict:
        if self.engine is None:
            return {"error": self.error}
        info = {"name": self.engine.name, "device": getattr(self.engine, "device", "cpu"),
                "model": getattr(self.engine, "model_path", None)}
        return {k: v for k, v in info.items() if v is not None}

    def run(self, jobs: list) -> list:
        if self.engine is None:
            return [failure(j.name, *self.error) for j in jobs]
        return [run_job(j, self.engine) for j in jobs]


def connect(address: str | None, cpus: int | None):
    """ray.init for a local instance (address None/'local'), 'auto', 'ray://HOST:PORT' or HOST:PORT."""
    from ..errors import UserError
    local = address in (None, "", "local")
    if local:
        os.environ.setdefault(LOOPBACK_ENV, "0")
    elif cpus:
        raise UserError("--ray-cpus only applies to the local Ray instance (--ray without an address)")
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'drip-matting[cluster]'") from None
    if ray.is_initialized():  # a caller (benchmark, notebook) already connected: use that
        return ray, False
    forward = {k: v for k, v in os.environ.items() if k.startswith(FORWARD_PREFIX)}
    kwargs = {"logging_level": logging.WARNING, "log_to_driver": False,
              "runtime_env": {"env_vars": forward} if forward else None}
    try:
        if local:
            # address="local": start one even when RAY_ADDRESS names a cluster
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        where = os.environ.get("RAY_ADDRESS", "(RAY_ADDRESS is not set)") if address == "auto" else address
        raise UserError(f"cannot reach the Ray cluster at {where}: {exc}") from None
    return ray, True


def uses_actors(engine: str, drip_model: str | None) -> tuple[bool, str | None]:
    """(actors?, model): an engine that holds a model (DRIP, or auto with a model configured)
    runs in actors that load it once."""
    from ..config import configured_drip_model
    from ..engines import intended_engine
    model = drip_model or configured_drip_model()
    if intended_engine(engine, model) == "classical":
        return False, None
    # resolve the model on the driver: workers may not share this user's config file
    return True, os.path.abspath(model) if model and "://" not in model else model


def run(jobs: list[Job], report, progress, *, engine: str, drip_model: str | None, address: str | None,
        cpus: int | None = None, actors: int | None = None, announce=print) -> None:
    """Matte ``jobs`` on Ray, adding every result to ``report`` and ``progress``."""
    if not jobs:  # everything complete (a rerun): no need to start or join a cluster
        return
    ray, owned = connect(address, cpus)
    try:
        resources = ray.cluster_resources()
        n_cpus, n_gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
        actor_path, model = uses_actors(engine, drip_model)
        info = {"address": address or "local", "cpus": n_cpus, "gpus": n_gpus,
                "nodes": len([n for n in ray.nodes() if n.get("Alive")])}
        report.settings["ray"] = info
        progress.restart_clock()
        announce(f"Ray: {info['nodes']} node(s), {n_cpus} CPU(s), {n_gpus} GPU(s); "
                 f"{len(jobs)} image(s) to matte")
        if actor_path:
            info.update(_run_actors(ray, jobs, report, progress, engine, model, n_cpus, n_gpus, actors))
        else:
            info.update(_run_tasks(ray, jobs, report, progress, engine, n_cpus))
    finally:
        if owned:
            ray.shutdown()


def _record(report, progress, result: dict) -> None:
    report.add(result)
    progress.update(result)


def _ray_failure(job: Job, exc: Exception) -> dict:
    from ray import exceptions as rx
    if isinstance(exc, rx.OutOfMemoryError):
        return failure(job.name, "out_of_memory", f"Ray stopped the worker for lack of memory: {exc}")
    if isinstance(exc, (rx.WorkerCrashedError, rx.RayActorError, rx.NodeDiedError)):
        return failure(job.name, "worker_died", f"the worker died on every retry ({exc.__class__.__name__})")
    return failure(job.name, "ray_error", f"{exc.__class__.__name__}: {exc}")


def _run_tasks(ray, jobs, report, progress, engine, n_cpus) -> dict:
    remote = ray.remote(num_cpus=1, max_retries=3)(run_job)
    window = max(2, IN_FLIGHT_PER_SLOT * n_cpus)
    todo, pending = iter(jobs), {}
    try:
        while True:
            while len(pending) < window:
                job = next(todo, None)
                if job is None:
                    break
                ref = remote.options(name=f"drip-matte:{job.name}").remote(job, engine_name=engine)
                pending[ref] = job
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    result = _ray_failure(job, exc)
                _record(report, progress, result)
    finally:
        for ref in pending:  # interrupted: do not leave tasks running on the cluster
            ray.cancel(ref, force=True)
    return {"workers": f"CPU tasks (engine {engine})"}


def _run_actors(ray, jobs, report, progress, engine, model, n_cpus, n_gpus, actors) -> dict:
    if n_gpus:
        count = actors or n_gpus
        options, device = {"num_gpus": 1, "num_cpus": 1}, None
    else:  # no GPU anywhere: CPU actors, each with a few cores for torch's threads
        per_actor = max(1, min(CPU_ACTOR_CPUS, n_cpus)) if not actors else max(1, n_cpus // actors)
        count = actors or max(1, n_cpus // per_actor)
        options, device = {"num_cpus": per_actor}, "cpu"
    cls = ray.remote(max_restarts=3, max_task_retries=3, **options)(MatteActor)
    pool = [cls.remote(engine, model, device) for _ in range(count)]
    described = ray.get(pool[0].describe.remote())
    load = {i: 0 for i in range(count)}
    queue = deque((job, 0) for job in jobs)
    pending = {}
    try:
        while queue or pending:
            for i in list(load):
                while load[i] < IN_FLIGHT_PER_SLOT and queue:
                    # small batches at the end so no actor idles while another holds the tail
                    size = max(1, min(BATCH_SIZE, math.ceil(len(queue) / (IN_FLIGHT_PER_SLOT * len(load)))))
                    batch = [queue.popleft() for _ in range(min(size, len(queue)))]
                    pending[pool[i].run.remote([j for j, _ in batch])] = (i, batch)
                    load[i] += 1
            if not pending:
                for job, _ in queue:  # every actor is gone
                    _record(report, progress, failure(job.name, "worker_died", "no matting actor is left"))
                queue.clear()
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i, batch = pending.pop(ref)
                if i in load:
                    load[i] -= 1
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayActorError:
                    load.pop(i, None)  # beyond its restarts: give its batch to the others
                    for job, attempts in batch:
                        if attempts + 1 < ACTOR_ATTEMPTS and load:
                            queue.appendleft((job, attempts + 1))
                        else:
                            _record(report, progress, failure(job.name, "worker_died",
                                                              "the matting actor died on every retry"))
                    continue
                except ray.exceptions.RayError as exc:
                    results = [_ray_failure(job, exc) for job, _ in batch]
                for result in results:
                    _record(report, progress, result)
    finally:
        for ref in pending:
            ray.cancel(ref)
        for actor in pool:
            ray.kill(actor)
    where = "GPU" if n_gpus else f"CPU ({options['num_cpus']} cores each)"
    return {"workers": f"{count} {where} actor(s) (engine {engine})", "actors": count, "actor": described}
