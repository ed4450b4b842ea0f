"""The ``drip`` engine: DRIP (diffusion-prior matting) behind the common Engine interface.

Construction verifies the model folder (drip.json, sha256 of every file: cached by size and
mtime, see drip_core.engines.drip.model.folder) and loads it once onto the best device (cuda -> mps ->
cpu; fp16 on GPUs), so a missing or damaged model fails *here*, with model_missing /
model_corrupt, and the registry's ``auto`` falls back to the classical engine.

A folder whose drip.json says ``"trained": false`` (straight from drip-convert: random switcher,
untrained U-Net) is refused: it would return plausible-looking garbage. Tests and benchmarks
opt in with ``allow_untrained=True`` or DRIP_MATTING_ALLOW_UNTRAINED=1.
"""
from __future__ import annotations

import os
import threading

from drip_protocol import Stage

from ...errors import Cancelled, EngineError, is_out_of_memory
from ...settings import env_name, settings
from ..base import Engine, Matte

# Steps, samples, native-size limit and the GPU performance options (docs/drip.md) come from
# the arguments, else from drip_core.settings (DRIP_MATTING_STEPS, ..._BUCKET, ..._COMPILE, ...).


class DripEngine(Engine):
    name = "drip"
    context_margin = 64  # known pixels around the unknown region: the U-Net's receptive context

    def __init__(self, model_path, device=None, *, allow_untrained: bool | None = None,
                 num_inference_steps: int | None = None, num_samples: int | None = None, seed: int = 0,
                 dtype=None, max_side: int | None = None, preload: bool = True, compile: bool | None = None,
                 compile_mode: str | None = None, bucket_size: int | None = None,
                 vae_tiling: bool | None = None, vae_tile_size: int | None = None):
        try:
            import diffusers  # noqa: F401
            import torch  # noqa: F401
        except ImportError as exc:
            missing = exc.name or exc
            raise EngineError("engine_unavailable", f"the DRIP engine needs torch and diffusers, and "
                                                    f"{missing} is not installed") from None
        from .model.folder import ModelFolderError, verify_model_folder

        self.model_path = os.path.abspath(os.fspath(model_path))
        try:
            self.manifest = verify_model_folder(self.model_path)
        except ModelFolderError as exc:
            raise EngineError(exc.code, exc.message, hint="") from None  # its message says what to do
        env = settings()
        if allow_untrained is None:
            allow_untrained = env.allow_untrained
        self.trained = bool(self.manifest.get("trained", False))
        if not self.trained and not allow_untrained:
            raise EngineError("model_corrupt", "this model folder holds untrained (converted-only/random) "
                                               f"weights ({self.model_path}): train it with drip-train (and "
                                               "drip-train-decoder) or import a trained DRIP model; set "
                                               f"{env_name('allow_untrained')}=1 only for tests and "
                                               "benchmarks", hint="")
        self.requested_device = device
        self.dtype = dtype
        # None = not chosen by the caller: the device decides once the model is loaded.
        self.num_inference_steps = num_inference_steps or env.steps
        self.num_samples = int(num_samples or env.samples or 1)
        self.seed = int(seed)
        self.max_side = max_side or env.max_side
        self.compile = env.compile if compile is None else bool(compile)
        self.compile_mode = compile_mode or env.compile_mode
        self.bucket_size = (env.bucket or 0) if bucket_size is None else int(bucket_size)
        self.vae_tiling = env.tiled_vae if vae_tiling is None else bool(vae_tiling)
        self.vae_tile_size = vae_tile_size or env.vae_tile
        self._pipe = None
        self._lock = threading.Lock()
        if preload:
            self._load()

    # -------------------------------------------------------------------- loading
    def _load(self):
        if self._pipe is not None:
            return self._pipe
        from .model.folder import ModelFolderError
        from .pipeline import DripPipeline

        kwargs = {"max_side": self.max_side} if self.max_side else {}
        if self.bucket_size:
            kwargs["bucket_size"] = self.bucket_size
        if self.vae_tiling:
            kwargs.update(vae_tiling=True, vae_tile_size=self.vae_tile_size)
        cpu_defaults = _resolves_to_cpu(self.requested_device)
        if cpu_defaults and not self.max_side:
            kwargs["max_side"] = CPU_MAX_SIDE
        try:
            # already verified in __init__: don't hash twice
            self._pipe = DripPipeline.from_pretrained(self.model_path, device=self.requested_device,
                                                      dtype=self.dtype, verify="off", **kwargs)
        except ModelFolderError as exc:
            raise EngineError(exc.code, exc.message, hint="") from None  # its message says what to do
        except Exception as exc:  # noqa: BLE001 - any load failure becomes a typed EngineError for the registry
            if is_out_of_memory(exc):
                _free_memory()
                where = self.requested_device or "the default device"
                raise EngineError("out_of_memory", f"not enough memory to load the DRIP model on {where}: "
                                                   f"{exc}") from None
            reason = f"{type(exc).__name__}: {exc}"
            raise EngineError("model_corrupt", f"the DRIP model in {self.model_path} could not be loaded "
                                               f"({reason}): import or convert it again", hint="") from None
        if self.num_inference_steps is None:
            self.num_inference_steps = CPU_STEPS if cpu_defaults else GPU_STEPS
        if self.compile:
            self._start_compile()
        return self._pipe

    def _start_compile(self):
        """Background compile of the full-size bucket; jobs run eager until a shape is compiled."""
        from .performance import DEFAULT_COMPILE_MODE

        try:
            self._pipe.enable_compile(self.compile_mode or DEFAULT_COMPILE_MODE,
                                      warmup_sizes=(self._pipe.max_side,))
        except ValueError as exc:
            raise EngineError("engine_unavailable", f"{env_name('compile_mode')}: {exc}",
                              hint=f"Correct {env_name('compile_mode')}, or unset it.") from None
        except Exception:  # noqa: BLE001 - no working torch.compile here: stay eager
            self._pipe.disable_compile()

    @property
    def device(self) -> str:
        return str(self._pipe.device) if self._pipe is not None else str(self.requested_device or "auto")

    # ---------------------------------------------------------------------- matte
    def _matte(self, image, trimap, progress, check_cancel) -> Matte:
        import torch

        if self._pipe is None:
            progress(0.0, Stage.LOADING_MODEL, f"loading {self.model_path}")
            self._load()
        check_cancel()
        steps = self.num_inference_steps
        if self._pipe.device.type == "cpu":
            progress(0.02, Stage.STARTING, f"DRIP on the CPU is slow (minutes per image at {steps} steps); "
                                      "a GPU or the classical engine is much faster")

        def report(fraction, stage, message=""):
            progress(min(0.99, float(fraction)), stage, message)

        def cancel():
            check_cancel()  # raises Cancelled
            return False

        with self._lock:
            try:
                out = self._pipe(image, trimap, num_inference_steps=steps,
                                 generator=torch.Generator().manual_seed(self.seed),
                                 num_samples=self.num_samples, progress=report, cancel=cancel)
            except Cancelled:
                raise
            except EngineError:
                raise
            except Exception as exc:
                if is_out_of_memory(exc):
                    _free_memory()
                    h, w = trimap.shape
                    raise EngineError("out_of_memory", f"DRIP ran out of memory on {self.device} for a "
                                                       f"{w}x{h} image") from None
                raise
        return Matte(out.foreground, out.alpha, self.name)


# Defaults when nobody chose: the paper's 10 steps on a GPU. A full-size U-Net step is slow on
# a CPU (docs/benchmarks.md), so fewer steps (the SAD-vs-steps curve in the paper's Fig. 8
# flattens early) and 512-px tiles keep a job to minutes, not an hour.
GPU_STEPS = 10
CPU_STEPS = 4
CPU_MAX_SIDE = 512


def _resolves_to_cpu(device) -> bool:
    if device is not None:
        return str(device).startswith("cpu")
    import torch
    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and hasattr(mps, "empty_cache") and torch.backends.mps.is_available():
        mps.empty_cache()
