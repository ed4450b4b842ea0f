"""GPU performance options for DripPipeline, all off by default (results unchanged when off).

* Size buckets (``bucket_size``): the working size of a region is padded up to a multiple of
  ``bucket_size`` (capped so it never exceeds ``max_side``), so a compiled / graph-captured U-Net
  sees a handful of shapes instead of one per image size. The pad is cropped off again.
* Tiled VAE (``vae_tiling``): diffusers' AutoencoderKL tiling (overlapping tiles, linear blends)
  for encode and decode, so VAE memory stays bounded for large regions.
* Compilation (``CompiledUNet``): ``torch.compile`` of the U-Net, done in a background thread,
  one latent shape at a time, while the caller keeps using the eager U-Net. A shape is served
  compiled only once its warm-up compile has finished, so no job ever waits for the compiler.
  The inductor caches (FX graph cache, autotune cache) go to a persistent per-user folder, so a
  restart re-loads compiled kernels instead of compiling for minutes again.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
from typing import Callable, Optional

import torch

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
DEFAULT_COMPILE_MODE = "max-autotune-no-cudagraphs"


def user_cache_dir() -> str:
    """Per-user cache folder of this project (XDG on Linux, LOCALAPPDATA on Windows,
    ~/Library/Caches on macOS)."""
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "drip-matting")


def configure_compile_cache(cache_dir: str | None = None) -> str:
    """Point inductor's on-disk caches at a persistent folder (unless TORCHINDUCTOR_CACHE_DIR is set)
    and turn on the FX graph cache. Returns the folder used."""
    path = cache_dir or _chosen_inductor_dir() or os.path.join(user_cache_dir(), "torchinductor")
    os.makedirs(path, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = path
    try:
        import torch._inductor.config as ic

        ic.fx_graph_cache = True
        if hasattr(ic, "autotune_local_cache"):
            ic.autotune_local_cache = True
    except Exception:  # noqa: BLE001 - an old torch without inductor: the env var alone still applies
        pass
    return path


def _chosen_inductor_dir() -> str | None:
    """TORCHINDUCTOR_CACHE_DIR if a user set it; torch itself writes its /tmp default there on first
    use, which does not count (it is wiped on reboot: no persistent cache)."""
    value = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if not value:
        return None
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        if os.path.abspath(value) == os.path.abspath(default_cache_dir()):
            return None
    except Exception:  # noqa: BLE001 - torch internals moved: treat the value as the user's choice
        pass
    return value


def bucketed_size(length: int, multiple: int, bucket: int, max_side: int) -> int:
    """The padded working length: a multiple of ``multiple`` and, when ``bucket`` > 0, of ``bucket``
    too, as long as that stays within ``max_side`` (else the plain multiple)."""
    plain = -(-length // multiple) * multiple
    if bucket <= 0:
        return plain
    step = bucket * multiple // _gcd(bucket, multiple)
    padded = -(-length // step) * step
    return padded if padded <= max(max_side, plain) else plain


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


class CompiledUNet:
    """Serves a compiled U-Net for shapes whose warm-up compile finished, eager otherwise.

    ``request(x, t, kwargs)`` is called by the pipeline for every U-Net call; it returns the
    compiled callable when the shape is ready, else None (the caller runs eager) after queueing
    the shape for a background compile. ``compile_fn`` defaults to ``torch.compile(unet, mode=...)``
    (injectable so the plumbing can be tested without running the compiler)."""

    def __init__(self, unet, mode: str = DEFAULT_COMPILE_MODE, *, background: bool = True,
                 compile_fn: Optional[Callable] = None, cache_dir: str | None = None):
        if mode not in COMPILE_MODES:
            raise ValueError(f"compile mode must be one of {COMPILE_MODES}, not {mode!r}")
        self.mode = mode
        self.background = background
        self.cache_dir = configure_compile_cache(cache_dir) if compile_fn is None else cache_dir
        if compile_fn is None:
            compiled = torch.compile(unet, mode=mode, dynamic=False, fullgraph=False)
        else:
            compiled = compile_fn(unet)
        self.compiled = compiled
        self.ready: set[tuple] = set()      # shapes served compiled
        self.failed: dict[tuple, str] = {}  # shapes whose compile raised (served eager for good)
        self._pending: set[tuple] = set()
        self._lock = threading.Lock()
        self._queue: "queue.Queue" = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self.calls = {"eager": 0, "compiled": 0}

    @staticmethod
    def key(x: torch.Tensor) -> tuple:
        return (tuple(x.shape), str(x.dtype), str(x.device))

    def request(self, x: torch.Tensor, t: torch.Tensor, kwargs: dict):
        k = self.key(x)
        with self._lock:
            if k in self.ready:
                self.calls["compiled"] += 1
                return self.compiled
            self.calls["eager"] += 1
            if k in self.failed or k in self._pending:
                return None
            self._pending.add(k)
        # example inputs for the warm-up: fresh tensors of the same shape (the job's own are in use)
        example_kwargs = {n: v.clone() if torch.is_tensor(v) else v for n, v in kwargs.items()}
        example = (torch.randn_like(x), t.clone(), example_kwargs)
        if self.background:
            self._queue.put((k, example))
            self._ensure_thread()
        else:
            self._warm(k, example)
        return None

    def warm_up(self, x: torch.Tensor, t: torch.Tensor, kwargs: dict) -> None:
        """Compile a shape ahead of time (e.g. the buckets, at start-up): queued, never blocking."""
        self.request(x, t, kwargs)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued compile finished (tests, benchmarks). True if done in time."""
        done = threading.Event()

        def waiter():
            self._queue.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)

    def _ensure_thread(self):
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._worker, name="drip-compile", daemon=True)
                self._thread.start()

    def _worker(self):
        while True:
            k, example = self._queue.get()
            try:
                self._warm(k, example)
            finally:
                self._queue.task_done()

    def _warm(self, k, example):
        x, t, kwargs = example
        try:
            with torch.no_grad():  # grad mode is per thread
                self.compiled(x, t, **kwargs)
                self.compiled(x, t, **kwargs)  # second call: reduce-overhead records its graph here
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            with self._lock:
                self.ready.add(k)
        except Exception as exc:  # noqa: BLE001 - serve eager for this shape rather than fail jobs
            with self._lock:
                self.failed[k] = f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self._pending.discard(k)
