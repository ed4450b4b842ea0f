"""What drip-train and drip-train-decoder share: device and precision choice, distributed
setup (torchrun), the data loader, the optimisation loop (``TrainingRun``: gradient accumulation,
clipping, logs, validation SAD, resumable checkpoints) and writing the trained model folder
(with a fresh drip.json). A stage brings only its ``Objective``: what it feeds the trained
module and which loss it minimises."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..model.folder import read_manifest, write_manifest

log = logging.getLogger("drip.train")


def add_common_args(p: argparse.ArgumentParser, *, lr: float, max_steps: int) -> None:
    p.add_argument("--model", required=True,
                   help="input DRIP model folder (from drip-convert or a previous stage)")
    p.add_argument("--data", required=True, help="training root in Composition-1k layout (fg/, alpha/, bg/)")
    p.add_argument("--output", required=True,
                   help="run folder: checkpoints/, logs, and the trained model in model/")
    p.add_argument("--fg-dir", default="fg")
    p.add_argument("--alpha-dir", default="alpha")
    p.add_argument("--bg-dir", default="bg")
    p.add_argument("--bg-per-fg", type=int, default=100,
                   help="composites per foreground per epoch (Comp-1k: 100)")
    p.add_argument("--crop-size", type=int, default=512)
    p.add_argument("--fg-pad-iterations", type=int, default=64,
                   help="foreground padding blur passes (paper: 64)")
    p.add_argument("--jitter", type=float, default=1.0, help="photometric jitter strength (0 = off)")
    p.add_argument("--trimap-erosion", type=int, nargs=2, default=(1, 29), metavar=("MIN", "MAX"),
                   help="training trimaps: known regions eroded by a random radius in MIN..MAX px "
                        "(ViTMatte: 1 29)")
    p.add_argument("--max-steps", type=int, default=max_steps, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=2, help="samples per device per micro-step")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-steps per optimizer step")
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--optimizer", default="adam", choices=("adam", "adamw"),
                   help="adam (the paper's choice) or adamw (GeoWizard's)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="default: 0 for adam, 1e-2 for adamw")
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--mixed-precision", default="auto", choices=("auto", "bf16", "fp16", "no"),
                   help="auto: bf16 autocast on CUDA, none elsewhere")
    p.add_argument("--gradient-checkpointing", default="auto", choices=("auto", "on", "off"),
                   help="auto: on for CUDA")
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--keep-checkpoints", type=int, default=3)
    p.add_argument("--resume", default="auto",
                   help="'auto' (latest checkpoint in OUTPUT), 'none', or a checkpoint folder")
    p.add_argument("--val-images", help="held-out images (enables validation SAD)")
    p.add_argument("--val-trimaps")
    p.add_argument("--val-alphas")
    p.add_argument("--val-every", type=int, default=1000)
    p.add_argument("--val-limit", type=int, default=20, help="validation images used")
    p.add_argument("--val-steps", type=int, default=10, help="denoising steps at validation")
    p.add_argument("--val-max-side", type=int, default=1024,
                   help="validation images are downscaled to this (0: full resolution; "
                        "drip-eval --layout comp1k gives the full benchmark figures)")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--num-workers", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device",
                   help="cuda, cuda:1, mps or cpu (default: best available; LOCAL_RANK under torchrun)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


class Runtime:
    """Device, rank and precision for this process."""

    def __init__(self, args):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if args.device:
            self.device = torch.device(args.device)
        elif torch.cuda.is_available():
            self.device = torch.device("cuda", self.local_rank)
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            self.device = torch.device("mps")
        else:
            self.device = torch.device("cpu")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        mp = args.mixed_precision
        if mp == "auto":
            mp = "bf16" if self.device.type == "cuda" else "no"
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mp)
        gc = args.gradient_checkpointing
        self.grad_checkpointing = gc == "on" or (gc == "auto" and self.device.type == "cuda")
        self.main = self.rank == 0

    def autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def barrier(self):
        if self.world > 1:
            torch.distributed.barrier()

    def close(self):
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def setup_logging(output: str, main: bool, name: str) -> None:
    os.makedirs(output, exist_ok=True)
    log.setLevel(logging.INFO if main else logging.WARNING)
    log.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    sh = logging.StreamHandler()
    sh.setFormatter(fmt)
    log.addHandler(sh)
    if main:
        fh = logging.FileHandler(os.path.join(output, f"{name}.log"))
        fh.setFormatter(fmt)
        log.addHandler(fh)
    log.propagate = False


def make_loader(args, runtime: Runtime):
    from .data import CompositionDataset

    ds = CompositionDataset(args.data, args.crop_size, fg_dir=args.fg_dir, alpha_dir=args.alpha_dir,
                            bg_dir=args.bg_dir, bg_per_fg=args.bg_per_fg, jitter=args.jitter,
                            fg_pad_iterations=args.fg_pad_iterations, trimap_px=tuple(args.trimap_erosion))
    sampler = None
    if runtime.world > 1:
        sampler = torch.utils.data.distributed.DistributedSampler(ds, runtime.world, runtime.rank,
                                                                  shuffle=True, seed=args.seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=sampler is None,
                                         sampler=sampler, num_workers=args.num_workers,
                                         drop_last=len(ds) >= args.batch_size,
                                         pin_memory=runtime.device.type == "cuda",
                                         persistent_workers=args.num_workers > 0)

    def forever():
        epoch = 0
        while True:
            if sampler is not None:
                sampler.set_epoch(epoch)
            for batch in loader:
                yield batch
            epoch += 1
    return ds, forever()


# ---------------------------------------------------------------------------- checkpoints
_CKPT = re.compile(r"^step-(\d+)$")


def checkpoints_dir(output: str) -> str:
    return os.path.join(output, "checkpoints")


def latest_checkpoint(output: str) -> str | None:
    d = checkpoints_dir(output)
    if not os.path.isdir(d):
        return None
    found = [(int(m.group(1)), n) for n in os.listdir(d) if (m := _CKPT.match(n))
             and os.path.isfile(os.path.join(d, n, "state.json"))]
    return os.path.join(d, max(found)[1]) if found else None


def resolve_resume(args) -> str | None:
    if args.resume == "none":
        return None
    if args.resume == "auto":
        return latest_checkpoint(args.output)
    if not os.path.isfile(os.path.join(args.resume, "state.json")):
        raise FileNotFoundError(f"{args.resume} is not a checkpoint folder (no state.json)")
    return args.resume


def save_checkpoint(output: str, step: int, module: torch.nn.Module, optimizer, lr_sched, extra: dict,
                    keep: int) -> str:
    """Weights in safetensors, optimizer state with torch.save; written to a temp folder then renamed."""
    from safetensors.torch import save_file

    d = checkpoints_dir(output)
    final = os.path.join(d, f"step-{step:07d}")
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_file({k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()},
              os.path.join(tmp, "weights.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "lr_scheduler": lr_sched.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
               os.path.join(tmp, "optimizer.pt"))
    with open(os.path.join(tmp, "state.json"), "w", encoding="utf-8") as f:
        json.dump({"step": step, **extra}, f, indent=2)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    found = sorted((int(m.group(1)), n) for n in os.listdir(d) if (m := _CKPT.match(n)))
    for _, name in found[:-keep] if keep > 0 else []:
        shutil.rmtree(os.path.join(d, name), ignore_errors=True)
    return final


def load_checkpoint(path: str, module: torch.nn.Module, optimizer, lr_sched) -> dict:
    from safetensors.torch import load_file

    module.load_state_dict(load_file(os.path.join(path, "weights.safetensors")))
    state = torch.load(os.path.join(path, "optimizer.pt"), map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    lr_sched.load_state_dict(state["lr_scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        except RuntimeError:
            pass  # different GPU count: keep the fresh CUDA RNG
    with open(os.path.join(path, "state.json"), "r", encoding="utf-8") as f:
        return json.load(f)


def make_optimizer(args, param_groups) -> torch.optim.Optimizer:
    """The paper trains with Adam (no weight decay); AdamW with decay 1e-2 is GeoWizard's choice."""
    if args.optimizer == "adamw":
        wd = 1e-2 if args.weight_decay is None else args.weight_decay
        return torch.optim.AdamW(param_groups, lr=args.lr, weight_decay=wd)
    return torch.optim.Adam(param_groups, lr=args.lr, weight_decay=args.weight_decay or 0.0)


def lr_lambda(warmup: int):
    return lambda step: min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


# ------------------------------------------------------------------------------ export
def export_model(src_model: str, out_model: str, replace: dict, *, stage_key: str, steps: int,
                 extra_source: dict | None = None) -> dict:
    """Copy ``src_model`` to ``out_model`` with the parts in ``replace`` ({subfolder: model with
    save_pretrained}) swapped for the trained ones; mark it trained and re-hash everything."""
    manifest = read_manifest(src_model)
    tmp = out_model.rstrip("/\\") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src_model, tmp, ignore=shutil.ignore_patterns(".drip-hashes.json", *replace.keys()))
    for sub, model in replace.items():
        model.save_pretrained(os.path.join(tmp, sub), safe_serialization=True)
    stages = dict(manifest.get("stages", {}))
    stages[stage_key] = int(stages.get(stage_key, 0)) + int(steps)
    source = dict(manifest.get("source", {}))
    source.update(extra_source or {})
    write_manifest(tmp, options=manifest["options"], trained=True, stages=stages, source=source,
                   previous=manifest)
    old = out_model.rstrip("/\\") + ".old"
    if os.path.exists(out_model):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_model, old)
    os.replace(tmp, out_model)
    shutil.rmtree(old, ignore_errors=True)
    return read_manifest(out_model)


# -------------------------------------------------------------------------- validation
def validate(pipe, args, generator_seed: int = 0) -> dict:
    """Mean alpha SAD (DIM protocol, unknown region, /1000) over the held-out set."""
    from PIL import Image

    from .data import ValidationSet, sad

    vs = ValidationSet(args.val_images, args.val_trimaps, args.val_alphas, limit=args.val_limit)
    sads = []
    t0 = time.time()
    for _name, image, tri, alpha in vs:
        h, w = tri.shape
        scale = min(1.0, args.val_max_side / max(h, w)) if args.val_max_side > 0 else 1.0
        if scale < 1.0:  # keeps validation affordable; SAD is then on the downscaled image
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
            tri = np.asarray(Image.fromarray(tri).resize(size, Image.NEAREST))
            alpha = np.asarray(Image.fromarray(alpha).resize(size, Image.BILINEAR), np.float32)
        out = pipe(image, tri, num_inference_steps=args.val_steps,
                   generator=torch.Generator().manual_seed(generator_seed))
        sads.append(sad(out.alpha, alpha, tri))
    return {"val_sad": float(np.mean(sads)), "val_images": len(sads),
            "val_seconds": round(time.time() - t0, 2)}


def run_cli(build_parser, train, argv: list[str] | None) -> int:
    """A training command's main: parse, train, say where the model folder went."""
    args = build_parser().parse_args(argv)
    result = train(args)
    if "model" in result:
        print(f"done: step {result['step']}, loss {result['loss']:.5f}; model folder {result['model']}")
    return 0


class MetricsLog:
    def __init__(self, output: str, name: str, main: bool):
        self.path = os.path.join(output, f"{name}-metrics.jsonl") if main else None

    def write(self, record: dict) -> None:
        if self.path:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


# ------------------------------------------------------------------------ the training loop
LOSS_KEYS = ("loss", "loss_fg", "loss_alpha")


@dataclass(frozen=True)
class TrainingStage:
    """How a stage names its files and records itself."""

    name: str       # OUTPUT/<name>.log and OUTPUT/<name>-metrics.jsonl
    program: str    # the console script (progress bar)
    kind: str       # "stage" in every checkpoint's state.json
    part: str       # the model folder's sub-folder it trains
    steps_key: str  # its step count in drip.json "stages"
    run_key: str    # its run folder in drip.json "source"


class Objective(Protocol):
    """A stage's loss, in the three phases of a micro-step."""

    def inputs(self, batch: dict) -> dict:
        """Everything the trained module does not learn from (frozen models, random draws); no grad."""

    def predict(self, model, inputs: dict) -> torch.Tensor:
        """The trained module's forward pass (under autocast)."""

    def losses(self, pred: torch.Tensor, inputs: dict) -> dict:
        """{"loss", "loss_fg", "loss_alpha"}; "loss" is minimised."""


class TrainingRun:
    """One process of a training stage: it owns the trained module, optimizer, schedule, data and
    step count, and runs the optimisation loop around the stage's ``Objective``.

        run = TrainingRun(args, STAGE)                   # device, logging, seed
        pipe = ...                                       # the stage loads its models
        run.prepare(pipe, module, param_groups)          # optimizer, schedule, resume, data
        run.loop(objective)                              # optimizer steps until --max-steps
        return run.finish()                              # OUTPUT/model with the trained part
    """

    def __init__(self, args, stage: TrainingStage):
        self.args, self.stage = args, stage
        self.rt = Runtime(args)
        setup_logging(args.output, self.rt.main, stage.name)
        # before the models load: it decides the random initialisations and the data order
        torch.manual_seed(args.seed + self.rt.rank)
        self.last: dict = {}

    def prepare(self, pipe, module: torch.nn.Module, param_groups) -> None:
        """Wrap ``module`` for torchrun, build its optimizer and schedule, resume, start the data."""
        self.pipe, self.module, self.model = pipe, module, module
        if self.rt.world > 1:
            ids = [self.rt.device] if self.rt.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)
        self.optimizer = make_optimizer(self.args, param_groups)
        self.lr_sched = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(self.args.warmup_steps))
        self.step = self._resume()
        self.dataset, self.batches = make_loader(self.args, self.rt)
        self.metrics = MetricsLog(self.args.output, self.stage.name, self.rt.main)

    def _resume(self) -> int:
        path = resolve_resume(self.args)
        if not path:
            return 0
        step = int(load_checkpoint(path, self.module, self.optimizer, self.lr_sched)["step"])
        log.info("resumed from %s at step %d", path, step)
        return step

    def loop(self, objective: Objective) -> dict:
        """Optimizer steps until --max-steps, each followed by its logs, validation and checkpoint."""
        bar = None
        if self.rt.main and not self.args.no_progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=self.args.max_steps, initial=self.step, desc=self.stage.program,
                       dynamic_ncols=True)
        t0 = time.time()
        while self.step < self.args.max_steps:
            totals = self.optimizer_step(objective)
            self.step += 1
            self.last = {"step": self.step, **totals, "lr": self.lr_sched.get_last_lr()[0]}
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{totals['loss']:.4f}")
            self._record(t0)
            self.rt.barrier()
        if bar is not None:
            bar.close()
        return self.last

    def optimizer_step(self, objective: Objective) -> dict:
        """Gradients of --grad-accum micro-batches, clipped to norm 1, one update; the mean losses."""
        self.optimizer.zero_grad(set_to_none=True)
        totals = dict.fromkeys(LOSS_KEYS, 0.0)
        for micro in range(self.args.grad_accum):
            losses = self._micro_step(objective, last=micro == self.args.grad_accum - 1)
            for k in totals:
                totals[k] += float(losses[k].detach()) / self.args.grad_accum
        torch.nn.utils.clip_grad_norm_(self.module.parameters(), 1.0)
        self.optimizer.step()
        self.lr_sched.step()
        return totals

    def _micro_step(self, objective: Objective, last: bool) -> dict:
        batch = {k: v.to(self.rt.device, non_blocking=True) for k, v in next(self.batches).items()}
        with torch.no_grad():
            inputs = objective.inputs(batch)
        # under torchrun the gradients are all-reduced once, on the last micro-step
        no_sync = self.rt.world > 1 and not last
        with self.model.no_sync() if no_sync else contextlib.nullcontext():
            with self.rt.autocast():
                pred = objective.predict(self.model, inputs)
            losses = objective.losses(pred, inputs)
            (losses["loss"] / self.args.grad_accum).backward()
        return losses

    def _due(self, every: int) -> bool:
        return self.rt.main and (self.step % every == 0 or self.step == self.args.max_steps)

    def _record(self, t0: float) -> None:
        """Log line and metrics, validation SAD and checkpoint, each on its own schedule."""
        args, last = self.args, self.last
        if self._due(args.log_every):
            last["seconds"] = round(time.time() - t0, 2)
            log.info("step %d loss %.5f (fg %.5f, alpha %.5f) lr %.2e", self.step, last["loss"],
                     last["loss_fg"], last["loss_alpha"], last["lr"])
            self.metrics.write(last)
        if args.val_images and self._due(args.val_every):
            self.module.eval()
            v = validate(self.pipe, args)
            self.module.train()
            log.info("step %d validation SAD %.3f over %d images (%.1fs)", self.step, v["val_sad"],
                     v["val_images"], v["val_seconds"])
            self.metrics.write({"step": self.step, **v})
            last.update(v)
        if self._due(args.checkpoint_every):
            path = save_checkpoint(args.output, self.step, self.module, self.optimizer, self.lr_sched,
                                   {"stage": self.stage.kind}, args.keep_checkpoints)
            log.info("checkpoint %s", path)

    def finish(self) -> dict:
        """The main process writes OUTPUT/model with the trained part; every process leaves
        torchrun's group. Returns the last step's figures ("model": the folder written)."""
        if self.rt.main:
            self.module.eval()
            out_model = os.path.join(self.args.output, "model")
            export_model(self.args.model, out_model, {self.stage.part: self.module},
                         stage_key=self.stage.steps_key, steps=self.step,
                         extra_source={self.stage.run_key: os.path.abspath(self.args.output)})
            log.info("wrote the model folder with the trained %s: %s", self.stage.part, out_model)
            self.last["model"] = out_model
        self.rt.close()
        return self.last
