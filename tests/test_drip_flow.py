"""End to end on tiny random models (CPU, seconds): make_tiny_sd2 -> convert -> drip-train
(+ resume) -> drip-train-decoder -> DripPipeline on a real photo crop -> the drip engine."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from drip_protocol import Stage

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

SHARED = Path(__file__).resolve().parents[2] / "shared"
ALPHAMATTING = SHARED / "data" / "alphamatting_lowres"


def photo_crop(name="GT04", box=(256, 384, 160, 288)):
    """A real 128x128 photo crop + trimap from ../shared, or a polite skip."""
    if not ALPHAMATTING.is_dir():
        pytest.skip(f"the alphamatting data is not at {ALPHAMATTING} (../shared absent)")
    from PIL import Image
    y0, y1, x0, x1 = box
    image = np.asarray(Image.open(ALPHAMATTING / "input_training_lowres" / f"{name}.png").convert("RGB"))
    tri = Image.open(ALPHAMATTING / "trimap_training_lowres" / "Trimap1" / f"{name}.png").convert("L")
    tri = np.asarray(tri)
    tri = np.where(tri < 64, 0, np.where(tri > 191, 255, 128)).astype(np.uint8)
    return np.ascontiguousarray(image[y0:y1, x0:x1]), np.ascontiguousarray(tri[y0:y1, x0:x1])


def _synthetic_comp1k(root: Path, n: int = 3, size: int = 80) -> Path:
    """A few synthetic foregrounds (soft discs) and backgrounds in the Composition-1k layout."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for sub in ("fg", "alpha", "bg", "val/image", "val/trimap", "val/alpha"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cy, cx, r = rng.uniform(25, 55, 2).tolist() + [rng.uniform(12, 22)]
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        alpha = np.clip((r - d) / 4 + 0.5, 0, 1)
        fg = (rng.uniform(0, 1, 3) * 255 * np.ones((size, size, 3))).astype(np.uint8)
        Image.fromarray(fg).save(root / "fg" / f"f{i}.png")
        Image.fromarray((alpha * 255).astype(np.uint8)).save(root / "alpha" / f"f{i}.png")
        bg = rng.integers(0, 255, (size + 10, size + 20, 3), dtype=np.uint8)
        Image.fromarray(bg).save(root / "bg" / f"b{i}.jpg")
        comp = alpha[..., None] * fg + (1 - alpha[..., None]) * bg[:size, :size]
        tri = np.where(alpha > 0.999, 255, np.where(alpha < 0.001, 0, 128)).astype(np.uint8)
        Image.fromarray(comp.astype(np.uint8)).save(root / "val" / "image" / f"v{i}.png")
        Image.fromarray(tri).save(root / "val" / "trimap" / f"v{i}.png")
        Image.fromarray((alpha * 255).astype(np.uint8)).save(root / "val" / "alpha" / f"v{i}.png")
    return root


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    from drip_core.engines.drip.model.convert import convert_sd2
    from drip_core.engines.drip.testing import TINY_DECODER_CONFIG, make_tiny_sd2

    base = tmp_path_factory.mktemp("drip")
    sd2 = make_tiny_sd2(str(base / "sd2"))
    manifest = convert_sd2(sd2, str(base / "converted"), decoder_config=TINY_DECODER_CONFIG)
    return {"base": base, "sd2": sd2, "converted": str(base / "converted"), "manifest": manifest}


def _train_args(work, out, steps, extra=()):
    data = work["base"] / "data"
    if not data.exists():
        _synthetic_comp1k(data)
    return ["--data", str(data), "--output", str(out), "--max-steps", str(steps), "--batch-size", "1",
            "--crop-size", "64", "--num-workers", "0", "--fg-pad-iterations", "4", "--bg-per-fg", "2",
            "--log-every", "1", "--no-progress", *extra]


@pytest.fixture(scope="module")
def trained(work):
    """Stage 1 for 2 steps, resumed to 3, then stage 2 for 1 step."""
    from drip_core.engines.drip.training import stage1_unet, stage2_decoder

    run1 = work["base"] / "run1"
    val = work["base"] / "data" / "val"
    r = stage1_unet.train(stage1_unet.build_parser().parse_args(
        ["--model", work["converted"], *_train_args(work, run1, 2, [
            "--checkpoint-every", "1", "--val-images", str(val / "image"),
            "--val-trimaps", str(val / "trimap"), "--val-alphas", str(val / "alpha"), "--val-every", "2",
            "--val-limit", "1", "--val-steps", "1", "--val-max-side", "64"])]))
    first = {"result": r, "unet": _unet_state(run1 / "model")}
    # the resumed step also exercises gradient checkpointing and bf16 autocast (CUDA defaults)
    r2 = stage1_unet.train(stage1_unet.build_parser().parse_args(
        ["--model", work["converted"], *_train_args(work, run1, 3, [
            "--checkpoint-every", "1", "--gradient-checkpointing", "on", "--mixed-precision", "bf16"])]))
    run2 = work["base"] / "run2"
    r3 = stage2_decoder.train_decoder(stage2_decoder.build_parser().parse_args(
        ["--model", str(run1 / "model"),
         *_train_args(work, run2, 1, ["--max-denoise-steps", "2", "--lr", "1e-3"])]))
    return {"run1": run1, "run2": run2, "first": first, "resumed": r2, "decoder": r3,
            "stage1_model": str(run1 / "model"), "model": str(run2 / "model")}


def _unet_state(model_dir):
    from safetensors.torch import load_file
    return load_file(str(Path(model_dir) / "unet" / "diffusion_pytorch_model.safetensors"))


# ------------------------------------------------------------------------- conversion
def test_conversion_layout_and_manifest(work):
    m = work["manifest"]
    conv = Path(work["converted"])
    assert m["trained"] is False and m["format_version"] == 1
    assert m["options"]["in_channels"] == 16 and m["options"]["prediction_type"] == "v_prediction"
    for rel in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                "transparency_decoder/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json",
                "empty_text_embedding.safetensors"):
        assert rel in m["files"] and (conv / rel).is_file()
    assert not list(conv.rglob("*.bin")) and not list(conv.rglob("*.pt"))  # safetensors only
    assert not (conv / "text_encoder").exists()  # not needed at inference
    sched = json.loads((conv / "scheduler" / "scheduler_config.json").read_text())
    assert sched["_class_name"] == "DPMSolverMultistepScheduler" and sched["algorithm_type"] == "dpmsolver++"
    unet_cfg = json.loads((conv / "unet" / "config.json").read_text())
    assert unet_cfg["in_channels"] == 16 and unet_cfg["class_embed_type"] == "projection"
    assert unet_cfg["projection_class_embeddings_input_dim"] == 2


def test_conversion_conv_in_invariant_and_copied_weights(work):
    from diffusers import UNet2DConditionModel

    sd = UNet2DConditionModel.from_pretrained(os.path.join(work["sd2"], "unet"))
    drip = UNet2DConditionModel.from_pretrained(os.path.join(work["converted"], "unet"))
    z = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(drip.conv_in(torch.cat([z] * 4, 1)), sd.conv_in(z), rtol=1e-5, atol=1e-5)
    sds, ds = sd.state_dict(), drip.state_dict()
    for k, v in sds.items():
        if k != "conv_in.weight":
            assert torch.equal(v, ds[k]), k
    assert {k for k in ds if k not in sds} == {k for k in ds if k.startswith("class_embedding.")}


def test_conversion_12_channels_and_empty_text(work, tmp_path):
    from safetensors.torch import load_file
    from transformers import CLIPTextModel, CLIPTokenizer

    from drip_core.engines.drip.model.convert import convert_sd2, empty_text_embedding, main
    from drip_core.engines.drip.testing import TINY_DECODER_CONFIG

    m = convert_sd2(work["sd2"], str(tmp_path / "c12"), 12, switcher_encoding="onehot",
                    prediction_type="epsilon", decoder_config=TINY_DECODER_CONFIG)
    assert m["options"]["in_channels"] == 12 and m["options"]["prediction_type"] == "epsilon"
    from drip_core.engines.drip.pipeline import DripPipeline
    pipe12 = DripPipeline.from_pretrained(tmp_path / "c12")
    assert pipe12.in_channels == 12 and pipe12.prediction_type == "epsilon"
    rng = np.random.default_rng(0)
    tri = np.full((64, 64), 128, np.uint8)
    tri[:16] = 0
    out = pipe12(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), tri, num_inference_steps=1)
    assert out.alpha.shape == (64, 64) and np.isfinite(out.alpha).all()
    emb = load_file(str(Path(work["converted"]) / "empty_text_embedding.safetensors"))["empty_text_embedding"]
    tok = CLIPTokenizer.from_pretrained(os.path.join(work["sd2"], "tokenizer"))
    te = CLIPTextModel.from_pretrained(os.path.join(work["sd2"], "text_encoder"))
    assert emb.shape == (1, 77, 32)
    torch.testing.assert_close(emb, empty_text_embedding(tok, te))
    assert main([work["sd2"], str(tmp_path / "c12")]) == 2  # refuses to overwrite


def test_converted_decoder_reproduces_plain_vae_decode(work):
    from drip_core.engines.drip.pipeline import DripPipeline

    pipe = DripPipeline.from_pretrained(work["converted"])
    z_fg, z_alpha = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    image, tri = torch.rand(1, 3, 64, 64) * 2 - 1, torch.zeros(1, 1, 64, 64)
    with torch.no_grad():
        dec_fg, dec_alpha = pipe.vae_decode(z_fg, z_alpha)
        out = pipe.refine(image, tri, z_fg, z_alpha)
    torch.testing.assert_close(out[:, :3], (dec_fg * 0.5 + 0.5).clamp(0, 1))
    torch.testing.assert_close(out[:, 3:], (dec_alpha.mean(1, keepdim=True) * 0.5 + 0.5).clamp(0, 1))


# ---------------------------------------------------------------------------- training
def test_stage1_training_changes_weights_and_resumes(work, trained):
    first, resumed = trained["first"], trained["resumed"]
    assert np.isfinite(first["result"]["loss"]) and np.isfinite(resumed["loss"])
    assert first["result"]["step"] == 2 and resumed["step"] == 3
    before = _unet_state(work["converted"])
    after = first["unet"]
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2
    log = (trained["run1"] / "train.log").read_text()
    assert "resumed from" in log and "at step 2" in log
    assert "autocast torch.bfloat16, grad checkpointing True" in log
    ckpts = sorted(p.name for p in (trained["run1"] / "checkpoints").iterdir())
    assert ckpts[-1] == "step-0000003"
    m = json.loads((Path(trained["stage1_model"]) / "drip.json").read_text())
    assert m["trained"] is True and m["stages"]["diffusion_steps"] == 3
    metrics = (trained["run1"] / "train-metrics.jsonl").read_text()
    records = [json.loads(line) for line in metrics.splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    vals = [r for r in records if "val_sad" in r]
    assert len(vals) == 1 and vals[0]["step"] == 2 and vals[0]["val_images"] == 1
    assert np.isfinite(vals[0]["val_sad"])
    assert first["result"]["val_sad"] == vals[0]["val_sad"]


def test_stage2_trains_only_the_decoder(trained):
    from safetensors.torch import load_file

    r = trained["decoder"]
    assert r["step"] == 1 and np.isfinite(r["loss"])
    s1, s2 = Path(trained["stage1_model"]), Path(trained["model"])

    def decoder_state(model):
        return load_file(str(model / "transparency_decoder" / "diffusion_pytorch_model.safetensors"))

    d1, d2 = decoder_state(s1), decoder_state(s2)
    assert any(not torch.equal(d1[k], d2[k]) for k in d1)
    u1, u2 = _unet_state(s1), _unet_state(s2)
    assert all(torch.equal(u1[k], u2[k]) for k in u1)  # diffusion model frozen
    m = json.loads((s2 / "drip.json").read_text())
    assert m["stages"] == {"diffusion_steps": 3, "decoder_steps": 1} and m["trained"] is True


# ---------------------------------------------------------------------------- pipeline
@pytest.fixture(scope="module")
def pipe(trained):
    from drip_core.engines.drip.pipeline import DripPipeline
    return DripPipeline.from_pretrained(trained["model"], device="cpu")


def test_pipeline_on_a_real_photo_crop(pipe):
    image, tri = photo_crop()
    assert (tri == 128).sum() > 500
    events = []

    def progress(fraction, stage, message):
        events.append((fraction, stage, message))

    out = pipe(image, tri, num_inference_steps=2, generator=torch.Generator().manual_seed(7),
               progress=progress)
    assert out.foreground.shape == (128, 128, 3) and out.alpha.shape == (128, 128)
    assert out.foreground.dtype == np.float32 and out.alpha.dtype == np.float32
    assert 0 <= out.alpha.min() and out.alpha.max() <= 1
    assert 0 <= out.foreground.min() and out.foreground.max() <= 1
    # the model's prediction everywhere: known pixels are the region owner's job (JobRegion)
    assert out.uncertainty is None
    assert [m for _, s, m in events if s == Stage.DENOISING] == ["step 1/2", "step 2/2"]
    assert Stage.DECODING in [s for _, s, _ in events] and events[-1][:2] == (1.0, Stage.DONE)
    again = pipe(image, tri, num_inference_steps=2, generator=torch.Generator().manual_seed(7))
    np.testing.assert_array_equal(again.alpha, out.alpha)
    np.testing.assert_array_equal(again.foreground, out.foreground)
    other = pipe(image, tri, num_inference_steps=2, generator=torch.Generator().manual_seed(8))
    assert not np.array_equal(other.alpha, out.alpha)


def test_pipeline_samples_give_uncertainty_and_odd_sizes_work(pipe):
    image, tri = photo_crop()
    image, tri = image[:100, :90], tri[:100, :90]  # not a multiple of 64
    out = pipe(image, tri, num_inference_steps=2, generator=torch.Generator().manual_seed(0), num_samples=3)
    assert out.alpha.shape == (100, 90) and out.uncertainty.shape == (100, 90)
    assert out.uncertainty.dtype == np.float32 and out.uncertainty.min() >= 0
    assert out.uncertainty[tri == 128].max() > 0 and (out.uncertainty[tri != 128] == 0).all()


def test_pipeline_tiles_large_inputs_without_seams(pipe):
    from drip_core.engines.drip.pipeline import _ramp, _tile_starts

    image, tri = photo_crop()
    image, tri = image[:100, :96], tri[:100, :96].copy()
    tri[:8] = 0  # an all-known border: the unknown box is smaller than the image
    old = pipe.max_side, pipe.tile_overlap
    try:
        pipe.max_side, pipe.tile_overlap = 64, 32
        plan = pipe._plan(tri == 128)
        assert len(plan) >= 4 and all(y1 - y0 <= 64 and x1 - x0 <= 64 for y0, y1, x0, x1, _ in plan)
        covered = np.zeros(tri.shape, bool)
        for y0, y1, x0, x1, _ in plan:
            covered[y0:y1, x0:x1] = True
        assert covered[tri == 128].all()
        out = pipe(image, tri, num_inference_steps=1, generator=torch.Generator().manual_seed(0))
        assert out.alpha.shape == tri.shape and np.isfinite(out.alpha).all()
        # blending is a partition of unity: tiles that agree give exactly their value, no seam
        pipe._run_region = lambda img, t, *a: (np.full(img.shape, 0.25, np.float32),
                                               np.full(t.shape, 0.5, np.float32), None)
        flat = pipe(image, tri, num_inference_steps=1)
        np.testing.assert_allclose(flat.alpha[tri == 128], 0.5, rtol=1e-6)
        np.testing.assert_allclose(flat.foreground[tri == 128], 0.25, rtol=1e-6)
    finally:
        pipe.max_side, pipe.tile_overlap = old
        pipe.__dict__.pop("_run_region", None)
    assert _tile_starts(200, 64, 32)[-1] == 136 and _tile_starts(50, 64, 32) == [0]
    w = _ramp(64, 10, 200, 16)
    assert w[0] < 0.05 and w[-1] < 0.05 and w[32] == 1.0
    assert _ramp(64, 0, 64, 16).min() == 1.0  # no ramp at the image border


def test_pipeline_cancel_between_steps(pipe):
    from drip_core.errors import Cancelled

    image, tri = photo_crop()
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) >= 1

    with pytest.raises(Cancelled):
        pipe(image, tri, num_inference_steps=3, generator=torch.Generator().manual_seed(0), cancel=cancel)
    assert len(calls) == 1


# ------------------------------------------------------------------------------ engine
def test_engine_through_the_interface(trained):
    from drip_core.engines.base import Cancelled, Matte
    from drip_core.engines.drip.engine import DripEngine

    engine = DripEngine(trained["model"], device="cpu", num_inference_steps=2)
    assert engine.name == "drip"
    assert engine.device == "cpu" and engine.trained is True and engine._pipe.dtype == torch.float32
    image, tri = photo_crop()
    seen = []
    m = engine.matte(image, tri, progress=lambda f, s, msg="": seen.append((f, s, msg)))
    assert isinstance(m, Matte) and m.engine == "drip"
    assert m.alpha.shape == tri.shape and m.foreground.shape == image.shape
    assert (m.alpha[tri == 0] == 0).all() and (m.alpha[tri == 255] == 1).all()
    np.testing.assert_array_equal(m.foreground[tri == 255], image[tri == 255] / np.float32(255))
    assert [msg for _, s, msg in seen if s == Stage.DENOISING] == ["step 1/2", "step 2/2"]
    assert seen[-1][1] == Stage.DONE
    assert all(0 <= f <= 1 for f, _, _ in seen)
    m2 = engine.matte(image, tri)
    np.testing.assert_array_equal(m.alpha, m2.alpha)  # fixed seed per job
    n = [0]

    def cancel():
        n[0] += 1
        return n[0] > 2
    with pytest.raises(Cancelled):
        engine.matte(image, tri, cancel=cancel)
    assert n[0] == 3  # checked before the run, then between steps: stopped after step 1


def test_engine_performance_options_from_the_environment(trained, monkeypatch):
    from drip_core.engines.base import EngineError
    from drip_core.engines.drip.engine import DripEngine
    from drip_core.engines.drip.pipeline import DripPipeline

    plain = DripEngine(trained["model"], device="cpu", num_inference_steps=1, preload=False)
    assert (plain.compile, plain.bucket_size, plain.vae_tiling) == (False, 0, False)  # all off by default
    started = []
    monkeypatch.setattr(DripPipeline, "enable_compile", lambda self, mode, **kw: started.append((mode, kw)))
    monkeypatch.setenv("DRIP_MATTING_BUCKET", "128")
    monkeypatch.setenv("DRIP_MATTING_TILED_VAE", "1")
    monkeypatch.setenv("DRIP_MATTING_VAE_TILE", "64")
    monkeypatch.setenv("DRIP_MATTING_COMPILE", "1")
    monkeypatch.setenv("DRIP_MATTING_COMPILE_MODE", "reduce-overhead")
    engine = DripEngine(trained["model"], device="cpu", num_inference_steps=1)
    pipe = engine._pipe
    assert pipe.bucket_size == 128 and pipe.vae_tiling and pipe.vae.tile_sample_min_size == 64
    assert started == [("reduce-overhead", {"warmup_sizes": (pipe.max_side,)})]  # non-blocking start
    assert engine.bucket_size == 128
    image, tri = photo_crop()
    m = engine.matte(image, tri)
    assert m.alpha.shape == tri.shape and (m.alpha[tri == 0] == 0).all() and (m.alpha[tri == 255] == 1).all()
    monkeypatch.setenv("DRIP_MATTING_BUCKET", "x")
    with pytest.raises(EngineError):
        DripEngine(trained["model"], device="cpu", preload=False)


def test_engine_samples_and_out_of_memory(trained, monkeypatch):
    from drip_core.engines.base import EngineError
    from drip_core.engines.drip.engine import DripEngine

    monkeypatch.setenv("DRIP_MATTING_STEPS", "1")
    monkeypatch.setenv("DRIP_MATTING_SAMPLES", "2")
    engine = DripEngine(trained["model"], device="cpu")
    assert (engine.num_inference_steps, engine.num_samples) == (1, 2)
    image, tri = photo_crop()
    m = engine.matte(image, tri)  # the mean of two noise draws
    assert m.alpha.shape == tri.shape and np.isfinite(m.alpha).all()

    def boom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    monkeypatch.setattr(type(engine._pipe), "__call__", lambda self, *a, **k: boom())
    with pytest.raises(EngineError) as e:
        engine.matte(image, tri)
    assert e.value.code == "out_of_memory"


def test_engine_refuses_untrained_missing_and_corrupt(work, tmp_path, monkeypatch):
    from drip_core.engines.base import EngineError
    from drip_core.engines.drip.engine import DripEngine
    from drip_core.engines.registry import resolve_engine

    monkeypatch.delenv("DRIP_MATTING_ALLOW_UNTRAINED", raising=False)
    with pytest.raises(EngineError) as e:
        DripEngine(work["converted"])
    assert e.value.code == "model_corrupt" and "untrained" in e.value.message
    monkeypatch.setenv("DRIP_MATTING_ALLOW_UNTRAINED", "1")
    assert DripEngine(work["converted"], device="cpu", preload=False).trained is False
    with pytest.raises(EngineError) as e:
        DripEngine(tmp_path / "absent")
    assert e.value.code == "model_missing" and "drip-convert" in e.value.message
    bad = tmp_path / "bad"
    shutil.copytree(work["converted"], bad)
    weights = bad / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(EngineError) as e:
        DripEngine(bad)
    assert e.value.code == "model_corrupt" and "sha256" in e.value.message
    engine, note = resolve_engine("auto", drip_model=str(bad))
    assert engine.name == "classical" and "DRIP unusable" in note
