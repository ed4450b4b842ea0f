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
        vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1, projection_dim=32))
    text.save_pretrained(os.path.join(path, "text_encoder"), safe_serialization=True)
    DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                  set_alpha_to_one=False, steps_offset=1, prediction_type=prediction_type,
                  num_train_timesteps=1000).save_pretrained(os.path.join(path, "scheduler"))
    with open(os.path.join(path, "model_index.json"), "w", encoding="utf-8") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
                   "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
                   "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                   "scheduler": ["diffusers", "DDIMScheduler"]}, f, indent=2)
    return path


def tiny_pipeline(*, in_channels: int = 16, max_side: int = 256, seed: int = 0, **kwargs):
    """A tiny random DripPipeline built in memory (CPU, fp32): no folder, for tests and smoke runs."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from .convert import dpm_solver_config
    from .pipeline import DripPipeline
    from .transparency_decoder import TransparencyDecoder

    ucfg = dict(TINY_UNET_CONFIG, in_channels=in_channels, class_embed_type="projection",
                projection_class_embeddings_input_dim=2)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**ucfg)
    vae = AutoencoderKL(**TINY_VAE_CONFIG)
    decoder = TransparencyDecoder(**TINY_DECODER_CONFIG)
    for m in (unet, vae, decoder):
        m.eval().requires_grad_(False)
    emb = torch.randn(1, 77, ucfg["cross_attention_dim"])
    scheduler = dpm_solver_config({"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                                   "num_train_timesteps": 1000, "prediction_type": "v_prediction"}, "v_prediction")
    options = {"in_channels": in_channels, "switcher_encoding": "scalar", "cross_domain_attention": True}
    return DripPipeline(unet, vae, decoder, scheduler, emb, options, {"trained": False}, max_side=max_side, **kwargs)
