"""drip-convert: a local Stable Diffusion 2 folder (diffusers layout) -> a DRIP model folder.

    drip-convert /models/stable-diffusion-2 /models/drip-sd2 [--in-channels 16]

Nothing is downloaded: every part is read from ``sd2_dir`` (local_files_only).
The result holds *untrained* weights (``"trained": false`` in drip.json); train it with
drip-train (and drip-train-decoder) before using it for mattes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from .folder import EMPTY_TEXT_FILE, write_manifest
from .switcher import encoding_dim

PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def _load(cls, folder: str, **kw):
    """from_pretrained on a local folder; falls back to the fp16 variant some SD2 copies ship."""
    import torch

    from ..pipeline import _quiet_diffusers

    with _quiet_diffusers():
        try:
            return cls.from_pretrained(folder, local_files_only=True, torch_dtype=torch.float32, **kw)
        except (OSError, EnvironmentError) as first:
            try:
                return cls.from_pretrained(folder, local_files_only=True, torch_dtype=torch.float32,
                                           variant="fp16", **kw)
            except Exception:  # noqa: BLE001 - no usable fp16 variant either: the first error says why
                raise first from None


def empty_text_embedding(tokenizer, text_encoder):
    """The CLIP embedding of the empty prompt, (1, 77, D): DRIP's fixed text condition."""
    import torch

    ids = tokenizer("", padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    with torch.no_grad():
        return text_encoder(ids)[0].float().contiguous()


def dpm_solver_config(sd2_scheduler_config: dict, prediction_type: str) -> dict:
    """DPM-Solver++ (paper: 10 steps) on SD2's noise schedule.

    timestep_spacing='trailing' makes the first of few steps start at t = T-1 (pure noise, as
    the sampler's input is); SD2's 'leading' would start 10 steps at t = 901."""
    from diffusers import DPMSolverMultistepScheduler

    cfg = {k: v for k, v in sd2_scheduler_config.items() if not k.startswith("_")}
    sched = DPMSolverMultistepScheduler.from_config(
        cfg, prediction_type=prediction_type, algorithm_type="dpmsolver++", solver_order=2,
        timestep_spacing="trailing", lower_order_final=True, final_sigmas_type="zero", steps_offset=0)
    return sched


def convert_sd2(sd2_dir: str, out_dir: str, in_channels: int = 16, *, switcher_encoding: str = "scalar",
                switcher_init: str = "random", prediction_type: str | None = None,
                decoder_config: dict | None = None, overwrite: bool = False, seed: int = 0) -> dict:
    """Write a DRIP model folder at ``out_dir`` from the SD2 folder ``sd2_dir``. Returns drip.json."""
    import torch

    from .transparency_decoder import TransparencyDecoder

    sd2_dir, out_dir = os.fspath(sd2_dir), os.fspath(out_dir)
    # 1. check the request before anything is written
    dim = _check_request(sd2_dir, in_channels, switcher_encoding, switcher_init)
    _empty_output(out_dir, overwrite)
    torch.manual_seed(seed)  # the new layers' initial weights
    # 2. U-Net: wider conv_in, switcher class embedding; every other weight copied from SD2
    _convert_unet(sd2_dir, out_dir, in_channels, dim, switcher_init)
    # 3. VAE unchanged; the text encoder only to embed the empty prompt once
    _copy_vae(sd2_dir, out_dir)
    _write_empty_text_embedding(sd2_dir, out_dir)
    # 4. DPM-Solver++ on SD2's noise schedule
    ptype = _write_scheduler(sd2_dir, out_dir, prediction_type)
    # 5. a fresh transparency decoder: the identity of the VAE decode until drip-train-decoder
    TransparencyDecoder(**(decoder_config or {})).save_pretrained(
        os.path.join(out_dir, "transparency_decoder"), safe_serialization=True)
    # 6. drip.json: options, untrained, sha256 of every file
    options = {"in_channels": in_channels, "switcher_encoding": switcher_encoding,
               "switcher_init": switcher_init, "prediction_type": ptype, "cross_domain_attention": True,
               "alpha_channels": "mean"}
    return write_manifest(out_dir, options=options, trained=False,
                          stages={"diffusion_steps": 0, "decoder_steps": 0},
                          source={"sd2_dir": os.path.abspath(sd2_dir), "converted_by": "drip-convert"})


def _check_request(sd2_dir: str, in_channels: int, switcher_encoding: str, switcher_init: str) -> int:
    """Raise ValueError / FileNotFoundError for a request that cannot work; the switcher's input width."""
    if in_channels not in (12, 16):
        raise ValueError("in_channels must be 16 ([image, trimap, fg, alpha] latents) "
                         "or 12 ([image, trimap, one domain])")
    if switcher_init not in ("random", "zero"):
        raise ValueError("switcher_init must be 'random' or 'zero'")
    dim = encoding_dim(switcher_encoding)
    missing = [p for p in PARTS if not os.path.isdir(os.path.join(sd2_dir, p))]
    if missing:
        raise FileNotFoundError(f"{sd2_dir} is not a Stable Diffusion 2 folder in diffusers layout "
                                f"(missing {', '.join(missing)})")
    return dim


def _empty_output(out_dir: str, overwrite: bool) -> None:
    if os.path.exists(out_dir) and os.listdir(out_dir):
        if not overwrite:
            raise FileExistsError(f"{out_dir} exists and is not empty (use overwrite=True / --overwrite)")
        shutil.rmtree(out_dir)
    os.makedirs(out_dir, exist_ok=True)


def _convert_unet(sd2_dir: str, out_dir: str, in_channels: int, dim: int, switcher_init: str) -> None:
    import torch
    from diffusers import UNet2DConditionModel

    from .conv_in import expand_conv_in

    sd_unet = _load(UNet2DConditionModel, os.path.join(sd2_dir, "unet"))
    cfg = {k: v for k, v in sd_unet.config.items() if not k.startswith("_")}
    cfg.update(in_channels=in_channels, class_embed_type="projection",
               projection_class_embeddings_input_dim=dim)
    unet = UNet2DConditionModel.from_config(cfg)
    state = sd_unet.state_dict()
    conv = expand_conv_in(sd_unet.conv_in, in_channels)
    state["conv_in.weight"] = conv.weight.detach()
    result = unet.load_state_dict(state, strict=False)
    if result.unexpected_keys or any(not k.startswith("class_embedding.") for k in result.missing_keys):
        raise RuntimeError(f"unexpected U-Net layout: missing {result.missing_keys}, "
                           f"unexpected {result.unexpected_keys}")
    if switcher_init == "zero":
        # the converted model then equals SD2 exactly until the switcher learns something
        torch.nn.init.zeros_(unet.class_embedding.linear_2.weight)
        torch.nn.init.zeros_(unet.class_embedding.linear_2.bias)
    unet.save_pretrained(os.path.join(out_dir, "unet"), safe_serialization=True)


def _copy_vae(sd2_dir: str, out_dir: str) -> None:
    from diffusers import AutoencoderKL

    _load(AutoencoderKL, os.path.join(sd2_dir, "vae")).save_pretrained(os.path.join(out_dir, "vae"),
                                                                       safe_serialization=True)


def _write_empty_text_embedding(sd2_dir: str, out_dir: str) -> None:
    """DRIP's fixed text condition, stored so inference needs no text encoder."""
    from safetensors.torch import save_file
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(os.path.join(sd2_dir, "tokenizer"), local_files_only=True)
    text_encoder = _load(CLIPTextModel, os.path.join(sd2_dir, "text_encoder"))
    save_file({"empty_text_embedding": empty_text_embedding(tokenizer, text_encoder)},
              os.path.join(out_dir, EMPTY_TEXT_FILE))


def _write_scheduler(sd2_dir: str, out_dir: str, prediction_type: str | None) -> str:
    """The sampler's config; returns the prediction type (SD2's unless one is asked for)."""
    with open(os.path.join(sd2_dir, "scheduler", "scheduler_config.json"), "r", encoding="utf-8") as f:
        sd_sched = json.load(f)
    ptype = prediction_type or sd_sched.get("prediction_type", "epsilon")
    if ptype not in ("epsilon", "v_prediction"):
        raise ValueError(f"prediction_type must be epsilon or v_prediction, not {ptype}")
    dpm_solver_config(sd_sched, ptype).save_pretrained(os.path.join(out_dir, "scheduler"))
    return ptype


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="drip-convert", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sd2_dir", help="local Stable Diffusion 2 folder in diffusers layout")
    p.add_argument("out_dir", help="DRIP model folder to write")
    p.add_argument("--in-channels", type=int, default=16, choices=(16, 12),
                   help="16: [image, trimap, noisy fg, noisy alpha] latents (default); 12: GeoWizard layout")
    p.add_argument("--switcher-encoding", default="scalar", choices=("scalar", "onehot"))
    p.add_argument("--switcher-init", default="random", choices=("random", "zero"))
    p.add_argument("--prediction-type", choices=("epsilon", "v_prediction"),
                   help="default: the SD2 scheduler's "
                        "(v_prediction for stable-diffusion-2, epsilon for -base)")
    p.add_argument("--decoder-config", help="JSON object of TransparencyDecoder options (widths etc.)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--seed", type=int, default=0, help="seed for the newly initialised layers")
    args = p.parse_args(argv)
    try:
        decoder_config = json.loads(args.decoder_config) if args.decoder_config else None
        manifest = convert_sd2(args.sd2_dir, args.out_dir, args.in_channels,
                               switcher_encoding=args.switcher_encoding, switcher_init=args.switcher_init,
                               prediction_type=args.prediction_type, decoder_config=decoder_config,
                               overwrite=args.overwrite, seed=args.seed)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"drip-convert: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out_dir}: {len(manifest['files'])} files, options {manifest['options']}")
    print("these weights are untrained: run drip-train (then drip-train-decoder) before matting with them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
