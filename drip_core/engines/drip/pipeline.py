"""DripPipeline: image + trimap -> foreground + alpha (DRIP inference), in one readable file.

    pipe = DripPipeline.from_pretrained("/models/drip")       # a folder written by drip-convert/drip-train
    out = pipe(image, trimap, num_inference_steps=10, generator=torch.Generator().manual_seed(0))
    out.foreground  # H x W x 3 float32 in [0, 1]
    out.alpha       # H x W float32 in [0, 1]

Steps (paper Fig. 2b):
 1. image (-> [-1, 1]) and the triplicated trimap (-> [-1, 1]) are VAE-encoded in one batch
    (latent = posterior mean x scaling factor);
 2. noisy foreground and alpha latents start from N(0, I) and are denoised together for
    ``num_inference_steps`` DPM-Solver++ steps: one U-Net batch of 2 = [foreground ; alpha],
    told apart by the switcher, exchanging information through cross-domain attention;
 3. both latents are VAE-decoded in one batch and refined by the latent transparency decoder.

The output is the model's prediction everywhere; the product (drip_core.region.JobRegion)
crops the job to the unknown region plus context before calling it and takes known pixels
from the trimap afterwards, so neither happens here.

Any size: the image is padded to a multiple of 64 and processed at native resolution when its
longer side is at most ``max_side``; beyond that in overlapping ``max_side`` tiles, blended with
linear ramps over the overlaps so no seam shows. Tiles without unknown pixels are skipped (the
trimap already answers them).

Performance options (off by default; drip_core/engines/drip/performance.py, docs/drip.md): ``bucket_size``
pads each region up to a few static shapes, ``vae_tiling`` bounds VAE memory with overlapping
tiles, ``enable_compile()`` serves a torch.compile'd U-Net once a background compile finished.

With ``num_samples > 1`` the denoising runs from several noise draws; the output is their
mean and ``uncertainty`` is the per-pixel standard deviation of alpha across them.
"""
from __future__ import annotations

import contextlib
import math
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from drip_protocol import Stage

from ...errors import Cancelled
from ...trimaps.values import BACKGROUND, FOREGROUND, UNKNOWN, snap
from .model.cross_domain_attention import install_cross_domain_attention
from .model.folder import EMPTY_TEXT_FILE, verify_model_folder
from .model.switcher import class_labels
from .performance import DEFAULT_COMPILE_MODE, CompiledUNet, bucketed_size

# progress(fraction in [0, 1], stage, message)
ProgressFn = Callable[[float, str, str], None]


@dataclass
class DripOutput:
    foreground: np.ndarray                    # float32 H x W x 3, [0, 1]
    alpha: np.ndarray                         # float32 H x W, [0, 1]
    uncertainty: Optional[np.ndarray] = None  # float32 H x W, std of alpha over samples (num_samples > 1)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """cuda -> mps -> cpu unless told otherwise."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """Half precision on accelerators (fp16: SD2's VAE and U-Net are fine in it), fp32 on CPU."""
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


@contextlib.contextmanager
def _quiet_diffusers():
    """diffusers warns about 'accelerate' on every from_pretrained; not useful to our users."""
    from diffusers.utils import logging as dlog

    level = dlog.get_verbosity()
    dlog.set_verbosity_error()
    try:
        yield
    finally:
        dlog.set_verbosity(level)


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    n = math.ceil((length - tile) / stride) + 1
    # spread the tiles evenly so every overlap is at least ``overlap`` wide
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def _ramp(length: int, start: int, total: int, overlap: int) -> np.ndarray:
    """1-D blend weight for a tile: linear ramps over the inner edges, flat at image borders."""
    w = np.ones(length, np.float32)
    if overlap <= 0:
        return w
    ramp = (np.arange(length, dtype=np.float32) + 0.5) / overlap
    if start > 0:
        w = np.minimum(w, ramp)
    if start + length < total:
        w = np.minimum(w, ramp[::-1])
    return np.clip(w, 1e-3, 1.0)


class DripPipeline:
    def __init__(self, unet, vae, transparency_decoder, scheduler, empty_text_embedding: torch.Tensor,
                 options: dict, manifest: dict | None = None, *, max_side: int = 1024,
                 tile_overlap: int = 128, bucket_size: int = 0, vae_tiling: bool = False,
                 vae_tile_size: int | None = None):
        self.unet = unet
        self.vae = vae
        self.decoder = transparency_decoder
        self.scheduler = scheduler
        self.options = dict(options)
        self.manifest = manifest or {}
        self.in_channels = int(self.options.get("in_channels", unet.config.in_channels))
        if self.in_channels != unet.config.in_channels:
            raise ValueError(f"drip.json says in_channels={self.in_channels}, "
                             f"the U-Net has {unet.config.in_channels}")
        self.switcher_encoding = self.options.get("switcher_encoding", "scalar")
        if self.options.get("cross_domain_attention", True):
            install_cross_domain_attention(unet)
        self.empty_text_embedding = empty_text_embedding
        self.max_side = int(max_side)
        self.tile_overlap = int(tile_overlap)
        self.latent_scale = 2 ** (len(vae.config.block_out_channels) - 1)
        unet_down = 2 ** (len(unet.config.block_out_channels) - 1)
        mult, dec = self.latent_scale * unet_down, transparency_decoder.size_multiple
        self.size_multiple = max(64, mult * dec // math.gcd(mult, dec))
        if self.max_side % self.size_multiple:
            self.max_side = max(self.size_multiple, self.max_side // self.size_multiple * self.size_multiple)
        self.bucket_size = int(bucket_size or 0)
        self.compiled_unet: CompiledUNet | None = None
        self.vae_tiling = False
        if vae_tiling:
            self.set_vae_tiling(True, vae_tile_size)

    # ------------------------------------------------------------ performance
    def set_vae_tiling(self, enabled: bool = True, tile_size: int | None = None) -> None:
        """Tiled VAE encode/decode (diffusers' AutoencoderKL tiling: overlapping tiles blended
        linearly) for regions larger than ``tile_size`` pixels (default: the VAE's sample_size,
        768 for SD2). Works on the whole [image ; trimap] and [fg ; alpha] batches."""
        self.vae_tiling = bool(enabled)
        if not enabled:
            self.vae.disable_tiling()
            return
        if tile_size:
            tile = int(tile_size)
            if tile % self.latent_scale:
                raise ValueError(f"vae tile size must be a multiple of {self.latent_scale}, not {tile}")
            self.vae.tile_sample_min_size = tile
            self.vae.tile_latent_min_size = tile // self.latent_scale
        self.vae.enable_tiling()

    def enable_compile(self, mode: str = DEFAULT_COMPILE_MODE, *, background: bool = True,
                       warmup_sizes: tuple[int, ...] = (), compile_fn=None,
                       cache_dir: str | None = None) -> CompiledUNet:
        """Serve a torch.compile'd U-Net for every shape whose compile finished; until then (and for
        shapes never seen) the eager U-Net runs, and the new shape is compiled in a background
        thread. ``warmup_sizes`` (square pixel sizes, e.g. the buckets) are queued right away."""
        self.compiled_unet = CompiledUNet(self.unet, mode, background=background, compile_fn=compile_fn,
                                          cache_dir=cache_dir)
        for size in warmup_sizes:
            lat = size // self.latent_scale
            z = torch.zeros(1, 4, lat, lat, device=self.device, dtype=self.dtype)
            x, t, kwargs = self._unet_args(self.unet_input(z, z, z, z), 999, 1)
            self.compiled_unet.warm_up(x, t, kwargs)
        return self.compiled_unet

    def disable_compile(self) -> None:
        self.compiled_unet = None

    def working_size(self, h: int, w: int) -> tuple[int, int]:
        """The padded size a region of h x w pixels is processed at."""
        m, b = self.size_multiple, self.bucket_size
        return bucketed_size(h, m, b, self.max_side), bucketed_size(w, m, b, self.max_side)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, path, device=None, dtype=None, *, verify: str | None = "cached",
                        **kwargs) -> "DripPipeline":
        """Load a DRIP model folder (checked against its drip.json first). Never downloads."""
        from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel
        from safetensors.torch import load_file

        from .model.transparency_decoder import TransparencyDecoder

        path = os.fspath(path)
        manifest = verify_model_folder(path, mode=verify)
        device = pick_device(device)
        dtype = dtype or default_dtype(device)
        with _quiet_diffusers():
            kw = dict(local_files_only=True, torch_dtype=dtype)
            unet = UNet2DConditionModel.from_pretrained(os.path.join(path, "unet"), **kw)
            vae = AutoencoderKL.from_pretrained(os.path.join(path, "vae"), **kw)
            decoder = TransparencyDecoder.from_pretrained(os.path.join(path, "transparency_decoder"), **kw)
            scheduler = DPMSolverMultistepScheduler.from_pretrained(os.path.join(path, "scheduler"))
        emb = load_file(os.path.join(path, EMPTY_TEXT_FILE))["empty_text_embedding"]
        for m in (unet, vae, decoder):
            m.to(device).eval().requires_grad_(False)
        return cls(unet, vae, decoder, scheduler, emb.to(device=device, dtype=dtype), manifest["options"],
                   manifest, **kwargs)

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def trained(self) -> bool:
        return bool(self.manifest.get("trained", False))

    @property
    def prediction_type(self) -> str:
        return self.scheduler.config.prediction_type

    # ------------------------------------------------------------ tensor steps
    # (also used by drip-train-decoder and the benchmark, on batches)
    def encode_conditions(self, image: torch.Tensor,
                          trimap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image (B,3,H,W), trimap (B,1|3,H,W), both in [-1,1] -> latents (B,4,h,w) each, one VAE batch."""
        tri3 = trimap.expand(-1, 3, -1, -1) if trimap.shape[1] == 1 else trimap
        x = torch.cat([image, tri3], dim=0).to(device=self.device, dtype=self.vae.dtype)
        z = self.vae.encode(x).latent_dist.mode() * self.vae.config.scaling_factor
        return z.chunk(2, dim=0)

    def unet_input(self, z_image, z_trimap, z_fg, z_alpha) -> torch.Tensor:
        """The (2B, C, h, w) U-Net input for the [foreground ; alpha] batch."""
        if self.in_channels == 16:
            one = torch.cat([z_image, z_trimap, z_fg, z_alpha], dim=1)
            return torch.cat([one, one], dim=0)
        # 12: each domain sees the conditions and its own noisy latent
        fg_in = torch.cat([z_image, z_trimap, z_fg], 1)
        alpha_in = torch.cat([z_image, z_trimap, z_alpha], 1)
        return torch.cat([fg_in, alpha_in], 0)

    def _unet_args(self, x: torch.Tensor, t, batch: int):
        emb = self.empty_text_embedding.to(device=x.device, dtype=self.unet.dtype).expand(2 * batch, -1, -1)
        labels = class_labels(batch, self.switcher_encoding, device=x.device, dtype=self.unet.dtype)
        if not torch.is_tensor(t):
            t = torch.tensor(t)
        t = t.to(x.device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(2 * batch)
        return x.to(self.unet.dtype), t, {"encoder_hidden_states": emb, "class_labels": labels}

    def unet_forward(self, x: torch.Tensor, t, batch: int) -> torch.Tensor:
        x, t, kwargs = self._unet_args(x, t, batch)
        unet = self.unet
        if self.compiled_unet is not None:
            compiled = self.compiled_unet.request(x, t, kwargs)
            if compiled is not None:  # (an OptimizedModule has no truth value: its __len__ raises)
                unet = compiled
        return unet(x, t, **kwargs).sample

    def new_scheduler(self):
        """A private scheduler instance per run (DPM-Solver keeps per-run state)."""
        return type(self.scheduler).from_config(self.scheduler.config)

    def denoise(self, z_image, z_trimap, num_inference_steps: int = 10,
                generator: torch.Generator | None = None,
                on_step: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the sampler; returns the predicted (z_fg, z_alpha) latents, float32."""
        b = z_image.shape[0]
        with warnings.catch_warnings():
            # diffusers' DPM-Solver calls np.array on a torch tensor (a numpy 2 DeprecationWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            sched = self.new_scheduler()
            sched.set_timesteps(num_inference_steps, device=self.device)
        noise_device = generator.device if generator is not None else self.device
        latents = torch.randn((2 * b,) + tuple(z_image.shape[1:]), generator=generator, device=noise_device,
                              dtype=torch.float32).to(self.device) * sched.init_noise_sigma
        for i, t in enumerate(sched.timesteps):
            model_in = sched.scale_model_input(latents, t)
            x = self.unet_input(z_image, z_trimap, model_in[:b], model_in[b:])
            pred = self.unet_forward(x, t, b).float()
            latents = sched.step(pred, t, latents).prev_sample
            if on_step is not None:
                on_step(i + 1, len(sched.timesteps))
        return latents[:b], latents[b:]

    def vae_decode(self, z_fg, z_alpha) -> tuple[torch.Tensor, torch.Tensor]:
        """Plain VAE decode of both latents in one batch -> (B,3,H,W) each in about [-1, 1]."""
        z = torch.cat([z_fg, z_alpha], 0).to(self.vae.dtype) / self.vae.config.scaling_factor
        return self.vae.decode(z).sample.float().chunk(2, dim=0)

    def refine(self, image, trimap, z_fg, z_alpha) -> torch.Tensor:
        """VAE decode + transparency decoder -> (B, 4, H, W) = foreground RGB, alpha in [0, 1]."""
        dec_fg, dec_alpha = self.vae_decode(z_fg, z_alpha)
        dt = self.decoder.dtype
        out = self.decoder(image.to(self.device, dt), trimap[:, :1].to(self.device, dt), dec_fg.to(dt),
                           dec_alpha.to(dt), z_fg.to(dt), z_alpha.to(dt))
        return out.float().clamp(0.0, 1.0)

    # ------------------------------------------------------------- user entry
    @torch.no_grad()
    def __call__(self, image, trimap, num_inference_steps: int = 10, generator: torch.Generator | None = None,
                 num_samples: int = 1, progress: ProgressFn | None = None,
                 cancel: Callable[[], bool] | None = None) -> DripOutput:
        """image: H x W x 3 (uint8, or float in [0,1]; PIL accepted); trimap: H x W with 0 / 128 / 255
        (uint8, or float in [0,1] with 0.5 unknown). ``cancel()`` is called between denoising steps:
        it may raise, or return True to stop with drip_core.errors.Cancelled."""
        img = _as_image(image)
        tri = _as_trimap(trimap)
        if tri.shape != img.shape[:2]:
            raise ValueError(f"trimap {tri.shape} and image {img.shape[:2]} differ in size")
        if num_samples < 1 or num_inference_steps < 1:
            raise ValueError("num_samples and num_inference_steps must be at least 1")
        report = progress or (lambda *a: None)
        h, w = tri.shape
        fg = img.copy()
        alpha = (tri == FOREGROUND).astype(np.float32)
        unc = np.zeros((h, w), np.float32) if num_samples > 1 else None
        unknown = tri == UNKNOWN
        if unknown.any():
            tiles = self._plan(unknown)
            total = len(tiles) * num_samples * num_inference_steps
            done = [0]
            acc_fg = np.zeros((h, w, 3), np.float32)
            acc_a = np.zeros((h, w), np.float32)
            acc_u = np.zeros((h, w), np.float32)
            acc_w = np.zeros((h, w), np.float32)
            for k, (y0, y1, x0, x1, wgt) in enumerate(tiles):
                where = f"tile {k + 1}/{len(tiles)}, " if len(tiles) > 1 else ""

                def on_step(i, n, _where=where):
                    done[0] += 1
                    report(done[0] / (total + 1), Stage.DENOISING, f"{_where}step {i}/{n}")
                    if cancel is not None and cancel():
                        raise Cancelled("cancelled between denoising steps")

                def status(stage, message, _where=where):
                    report(done[0] / (total + 1), stage, _where + message)

                f_t, a_t, u_t = self._run_region(img[y0:y1, x0:x1], tri[y0:y1, x0:x1], num_inference_steps,
                                                 generator, num_samples, on_step, status)
                acc_fg[y0:y1, x0:x1] += f_t * wgt[..., None]
                acc_a[y0:y1, x0:x1] += a_t * wgt
                if u_t is not None:
                    acc_u[y0:y1, x0:x1] += u_t * wgt
                acc_w[y0:y1, x0:x1] += wgt
            covered = acc_w > 0
            fg[covered] = acc_fg[covered] / acc_w[covered][:, None]
            alpha[covered] = acc_a[covered] / acc_w[covered]
            if unc is not None:
                unc[covered] = acc_u[covered] / acc_w[covered]
        if unc is not None:
            unc[~unknown] = 0.0
        report(1.0, Stage.DONE, "")
        return DripOutput(np.clip(fg, 0, 1).astype(np.float32), np.clip(alpha, 0, 1).astype(np.float32), unc)

    def _plan(self, unknown: np.ndarray) -> list[tuple]:
        """Regions to process: (y0, y1, x0, x1, blend weight)."""
        h, w = unknown.shape
        if max(h, w) <= self.max_side:
            return [(0, h, 0, w, np.ones((h, w), np.float32))]
        y0, y1, x0, x1 = 0, h, 0, w  # the caller already cut the region (JobRegion)
        tiles = []
        overlap = min(self.tile_overlap, self.max_side // 2)
        for ty in _tile_starts(y1 - y0, self.max_side, overlap):
            for tx in _tile_starts(x1 - x0, self.max_side, overlap):
                ay, ax = y0 + ty, x0 + tx
                by, bx = min(y1, ay + self.max_side), min(x1, ax + self.max_side)
                if not unknown[ay:by, ax:bx].any():
                    continue  # nothing to estimate here
                wy = _ramp(by - ay, ay - y0, y1 - y0, overlap)
                wx = _ramp(bx - ax, ax - x0, x1 - x0, overlap)
                tiles.append((ay, by, ax, bx, np.outer(wy, wx)))
        return tiles

    def _run_region(self, img: np.ndarray, tri: np.ndarray, steps: int, generator, num_samples: int,
                    on_step, status):
        h, w = tri.shape
        hp, wp = self.working_size(h, w)
        ph, pw = hp - h, wp - w
        img_p = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge")
        tri_p = np.pad(tri, ((0, ph), (0, pw)), mode="edge")
        image_t = torch.from_numpy(img_p).permute(2, 0, 1)[None].to(self.device) * 2 - 1
        tri_t = torch.from_numpy(tri_p.astype(np.float32) / 127.5 - 1.0)[None, None].to(self.device)
        status(Stage.ENCODING, "VAE encode")
        z_img, z_tri = self.encode_conditions(image_t, tri_t)
        fgs, alphas = [], []
        for _ in range(num_samples):
            z_fg, z_alpha = self.denoise(z_img, z_tri, steps, generator, on_step)
            status(Stage.DECODING, "VAE decode + transparency decoder")
            out = self.refine(image_t, tri_t, z_fg, z_alpha)[0].cpu().numpy()
            fgs.append(out[:3, :h, :w].transpose(1, 2, 0))
            alphas.append(out[3, :h, :w])
        fg = np.mean(fgs, axis=0)
        alpha = np.mean(alphas, axis=0)
        unc = np.std(alphas, axis=0).astype(np.float32) if num_samples > 1 else None
        return fg.astype(np.float32), alpha.astype(np.float32), unc


def _as_image(image) -> np.ndarray:
    arr = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"image must be H x W x 3, got {arr.shape}")
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def _as_trimap(trimap) -> np.ndarray:
    arr = np.asarray(trimap.convert("L") if hasattr(trimap, "convert") else trimap)
    if arr.ndim == 3:
        arr = arr[..., 0]
    if arr.dtype != np.uint8:
        f = arr.astype(np.float32)
        arr = np.where(f <= 0.25, BACKGROUND, np.where(f >= 0.75, FOREGROUND, UNKNOWN)).astype(np.uint8)
    else:
        arr = snap(arr)
    return arr
