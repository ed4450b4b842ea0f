"""Tiny, randomly initialised Stable-Diffusion-2-layout folders so the real conversion,
pipeline, training and engine code runs on a CPU in seconds. Nothing is downloaded: the
CLIP tokenizer is built from a character vocabulary written here.

Not a model: its mattes are noise. Use it for tests and smoke runs only.
"""
from __future__ import annotations

import json
import os

# A decoder small enough for CPU tests (same topology as the default, fewer/narrower levels).
TINY_DECODER_CONFIG = {
    "block_out_channels": [8, 8, 16, 16],
    "layers_per_block": 1,
    "norm_num_groups": 4,
    "attention_levels": [3],
    "attention_head_dim": 8,
    "latent_level": 3,
}

TINY_UNET_CONFIG = {
    "sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
    "block_out_channels": (32, 64), "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"), "cross_attention_dim": 32,
    "attention_head_dim": 8, "use_linear_projection": True, "norm_num_groups": 8,
}
# four levels, so the latent grid is 1/8 of the image as in the real VAE
TINY_VAE_CONFIG = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 8,
    "block_out_channels": (8, 16, 16, 16), "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4, "sample_size": 64,
}


def _write_tokenizer(path: str) -> None:
    from transformers import CLIPTokenizer

    os.makedirs(path, exist_ok=True)
    chars = [chr(c) for c in range(33, 127)]
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    raw = os.path.join(path, "_raw")
    os.makedirs(raw, exist_ok=True)
    with open(os.path.join(raw, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f)
    with open(os.path.join(raw, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
    tok = CLIPTokenizer(os.path.join(raw, "vocab.json"), os.path.join(raw, "merges.txt"), model_max_length=77,
                        pad_token="<|endoftext|>")
    tok.save_pretrained(path)
    for name in ("vocab.json", "merges.txt"):
        os.remove(os.path.join(raw, name))
    os.rmdir(raw)
    return len(vocab)


def make_tiny_sd2(path: str, *, prediction_type: str = "v_prediction", seed: int = 0) -> str:
    """Write a tiny random SD2-layout folder (unet, vae, text_encoder, tokenizer, scheduler) at ``path``."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    os.makedirs(path, exist_ok=True)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**TINY_UNET_CONFIG)
    unet.save_pretrained(os.path.join(path, "unet"), safe_serialization=True)
    vae = AutoencoderKL(**TINY_VAE_CONFIG)
    vae.save_pretrained(os.path.join(path, "vae"), safe_serialization=True)
    vocab_size = _write_tokenizer(os.path.join(path, "tokenizer"))
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1, projection_dim=32))
    text.save_pretrained(os.path.join(path, "text_encoder"), safe_serialization=True)
    DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                  set_alpha_to_one=False, steps_offset=1, prediction_type=prediction_type,
                  num_train_timesteps=1000).save_pretrained(os.path.join(path, "scheduler"))
    with open(os.path.join(path, "model_index.json"), "w", encoding="utf-8") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
                   "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
                   "text_encoder": ["transformers", "CLIPTextModel"],
                   "tokenizer": ["transformers", "CLIPTokenizer"],
                   "scheduler": ["diffusers", "DDIMScheduler"]}, f, indent=2)
    return path


def tiny_pipeline(*, in_channels: int = 16, max_side: int = 256, seed: int = 0, **kwargs):
    """A tiny random DripPipeline built in memory (CPU, fp32): no folder, for tests and smoke runs."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from .model.convert import dpm_solver_config
    from .model.transparency_decoder import TransparencyDecoder
    from .pipeline import DripPipeline

    ucfg = dict(TINY_UNET_CONFIG, in_channels=in_channels, class_embed_type="projection",
                projection_class_embeddings_input_dim=2)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**ucfg)
    vae = AutoencoderKL(**TINY_VAE_CONFIG)
    decoder = TransparencyDecoder(**TINY_DECODER_CONFIG)
    for m in (unet, vae, decoder):
        m.eval().requires_grad_(False)
    emb = torch.randn(1, 77, ucfg["cross_attention_dim"])
    sd2_schedule = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                    "num_train_timesteps": 1000, "prediction_type": "v_prediction"}
    scheduler = dpm_solver_config(sd2_schedule, "v_prediction")
    options = {"in_channels": in_channels, "switcher_encoding": "scalar", "cross_domain_attention": True}
    return DripPipeline(unet, vae, decoder, scheduler, emb, options, {"trained": False}, max_side=max_side,
                        **kwargs)


# ------------------------------------------------------------------ learning check
def _smooth_field(rng, size: int, cells: int, channels: int):
    """A smooth random image: a few random values per side, bicubically upsampled, in [0, 1]."""
    import numpy as np
    from PIL import Image

    out = []
    for _ in range(channels):
        grid = rng.uniform(0, 255, (cells, cells)).astype(np.uint8)
        out.append(np.asarray(Image.fromarray(grid).resize((size, size), Image.BICUBIC), np.float32) / 255)
    return np.stack(out, axis=2)


def _soft_ellipse(rng, size: int):
    import numpy as np

    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    cy, cx = rng.uniform(0.35, 0.65, 2) * size
    ry, rx = rng.uniform(0.15, 0.3, 2) * size
    soft = rng.uniform(0.03, 0.08) * size  # width of the transparent edge
    d = (np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) - 1) * min(ry, rx)
    return np.clip(0.5 - d / soft, 0, 1)


def synthetic_composites(root: str, n_fg: int = 8, n_bg: int = 4, size: int = 64, seed: int = 0) -> str:
    """Composition-1k-layout training data a tiny model can learn: soft ellipses (alpha) over
    smooth colour fields (foreground), smooth backgrounds. Writes fg/, alpha/, bg/ under root."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for sub in ("fg", "alpha", "bg"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)

    def u8(a):
        return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)

    for i in range(n_fg):
        Image.fromarray(u8(_smooth_field(rng, size, 3, 3))).save(os.path.join(root, "fg", f"f{i}.png"))
        Image.fromarray(u8(_soft_ellipse(rng, size))).save(os.path.join(root, "alpha", f"f{i}.png"))
    for j in range(n_bg):
        Image.fromarray(u8(_smooth_field(rng, size, 4, 3))).save(os.path.join(root, "bg", f"b{j}.png"))
    return root


def evaluation_composites(root: str, trimap_px: int = 4):
    """The training foregrounds composited on the backgrounds in turn, with a fixed trimap:
    [(image uint8, trimap uint8, alpha uint8, foreground uint8)]."""
    import numpy as np
    from PIL import Image

    from .training.data import trimap_from_alpha

    names = sorted(os.listdir(os.path.join(root, "fg")))
    bgs = sorted(os.listdir(os.path.join(root, "bg")))
    rng = np.random.default_rng(0)
    out = []
    for i, name in enumerate(names):
        fg = np.asarray(Image.open(os.path.join(root, "fg", name)).convert("RGB"))
        a8 = np.asarray(Image.open(os.path.join(root, "alpha", name)).convert("L"))
        bg = np.asarray(Image.open(os.path.join(root, "bg", bgs[i % len(bgs)])).convert("RGB"))
        a = a8[..., None].astype(np.float32) / 255
        image = (a * fg + (1 - a) * bg + 0.5).astype(np.uint8)
        tri = trimap_from_alpha(a8.astype(np.float32) / 255, rng, trimap_px, trimap_px)
        out.append((image, tri, a8, fg))
    return out


def fit_tiny_vae(sd2_path: str, data_root: str, steps: int = 300, batch: int = 8, lr: float = 2e-3,
                 seed: int = 0) -> dict:
    """Train the tiny VAE of ``sd2_path`` as a plain autoencoder on what DRIP encodes (composites,
    trimaps, foregrounds, alphas from ``data_root``), so its latents can represent an alpha
    matte; set scaling_factor to 1 / std of the latents, as SD's VAE has. Saves it in place."""
    import torch
    from diffusers import AutoencoderKL

    from .training.data import CompositionDataset

    torch.manual_seed(seed)
    vae = AutoencoderKL.from_pretrained(os.path.join(sd2_path, "vae"))
    vae.train()
    ds = CompositionDataset(data_root, 64, bg_per_fg=4, jitter=0.5, fg_pad_iterations=64, trimap_px=(2, 8))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    step, first = 0, None
    while step < steps:
        for b in loader:
            x = torch.cat([b["image"], b["trimap"].expand(-1, 3, -1, -1), b["foreground"],
                           b["alpha"].expand(-1, 3, -1, -1)])
            post = vae.encode(x).latent_dist
            rec = vae.decode(post.mode()).sample
            loss = torch.nn.functional.mse_loss(rec, x) + 1e-6 * post.kl().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            first = float(loss.detach()) if first is None else first
            step += 1
            if step >= steps:
                break
    vae.eval()
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode()  # the last batch: composites, trimaps, fg, alpha
    vae.register_to_config(scaling_factor=float(1.0 / z.std()))
    vae.save_pretrained(os.path.join(sd2_path, "vae"), safe_serialization=True)
    return {"vae_loss_first": first, "vae_loss_last": float(loss.detach()),
            "scaling_factor": vae.config.scaling_factor}


def score_model(model_dir: str, samples, steps: int = 10, seed: int = 0) -> dict:
    """Mean alpha SAD (unknown region, /1000) and DRIP foreground error of a model folder."""
    import numpy as np
    import torch

    from ...eval.metrics import foreground_errors, sad, to_uint8
    from .pipeline import DripPipeline

    pipe = DripPipeline.from_pretrained(model_dir, device="cpu", dtype=torch.float32, verify="off")
    sads, fg_sads = [], []
    for image, tri, a8, fg in samples:
        out = pipe(image, tri, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed))
        sads.append(sad(to_uint8(out.alpha), a8, tri))
        fg_sads.append(foreground_errors(to_uint8(out.foreground) / 255, fg / 255, a8 / 255, tri, "drip").sad)
    return {"alpha_sad": float(np.mean(sads)), "fg_sad": float(np.mean(fg_sads))}


def learning_check(work: str, *, stage1_steps: int = 300, stage2_steps: int = 150, batch: int = 4,
                   vae_steps: int = 300, vae_batch: int = 8, lr: float = 1e-3, decoder_lr: float = 1e-3,
                   log=print) -> dict:
    """The 'training learns' experiment: tiny SD2 (VAE fitted first) -> drip-convert ->
    drip-train -> drip-train-decoder on synthetic composites; returns SAD / foreground figures
    of the untrained, stage-1 and stage-2 models on those composites."""
    import time

    from .model.convert import convert_sd2
    from .training import stage1_unet, stage2_decoder

    t0 = time.time()
    data = synthetic_composites(os.path.join(work, "data"))
    sd2 = make_tiny_sd2(os.path.join(work, "sd2"))
    fig = {"vae": fit_tiny_vae(sd2, data, steps=vae_steps, batch=vae_batch)}
    fig["vae"]["seconds"] = round(time.time() - t0, 1)
    log(f"VAE fitted: loss {fig['vae']['vae_loss_first']:.4f} -> {fig['vae']['vae_loss_last']:.4f} "
        f"({fig['vae']['seconds']} s)")
    converted = os.path.join(work, "converted")
    convert_sd2(sd2, converted, decoder_config=TINY_DECODER_CONFIG, overwrite=True)
    samples = evaluation_composites(data)
    fig["untrained"] = score_model(converted, samples)
    log(f"untrained: {fig['untrained']}")
    common = ["--data", data, "--bg-per-fg", "4", "--crop-size", "64", "--batch-size", str(batch),
              "--num-workers", "0", "--trimap-erosion", "2", "8", "--jitter", "0.5", "--log-every", "50",
              "--checkpoint-every", "100000", "--no-progress", "--resume", "none"]
    t1 = time.time()
    s1 = os.path.join(work, "stage1")
    stage1_unet.train(stage1_unet.build_parser().parse_args(
        ["--model", converted, "--output", s1, "--max-steps", str(stage1_steps), "--lr", str(lr), *common]))
    fig["stage1"] = score_model(os.path.join(s1, "model"), samples)
    fig["stage1"]["train_seconds"] = round(time.time() - t1, 1)
    log(f"after drip-train ({stage1_steps} steps): {fig['stage1']}")
    t2 = time.time()
    s2 = os.path.join(work, "stage2")
    stage2_decoder.train_decoder(stage2_decoder.build_parser().parse_args(
        ["--model", os.path.join(s1, "model"), "--output", s2, "--max-steps", str(stage2_steps),
         "--lr", str(decoder_lr), "--max-denoise-steps", "10", *common]))
    fig["stage2"] = score_model(os.path.join(s2, "model"), samples)
    fig["stage2"]["train_seconds"] = round(time.time() - t2, 1)
    log(f"after drip-train-decoder ({stage2_steps} steps): {fig['stage2']}")
    fig["seconds"] = round(time.time() - t0, 1)
    return fig
