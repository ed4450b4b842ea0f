"""DRIP building blocks, without a model folder: conv_in expansion, switcher, cross-domain
attention, transparency decoder init, multi-res noise, data augmentations, losses, manifest."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")


def test_conv_in_expansion_preserves_output_for_equal_inputs():
    from drip_core.engines.drip.model.conv_in import expand_conv_in

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 32, 3, padding=1)
    z = torch.randn(2, 4, 8, 8)
    for channels in (16, 12):
        wide = expand_conv_in(conv, channels)
        assert wide.in_channels == channels and wide.out_channels == 32
        copies = channels // 4
        torch.testing.assert_close(wide(z.repeat(1, copies, 1, 1)), conv(z), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        expand_conv_in(conv, 10)


def test_switcher_encodings_differ_and_have_declared_size():
    from drip_core.engines.drip.model.switcher import (
        ALPHA,
        FOREGROUND,
        class_labels,
        domain_encoding,
        encoding_dim,
    )

    for enc in ("scalar", "onehot"):
        f, a = domain_encoding(FOREGROUND, enc), domain_encoding(ALPHA, enc)
        assert f.shape == a.shape == (encoding_dim(enc),)
        assert not torch.allclose(f, a)
        labels = class_labels(3, enc)
        assert labels.shape == (6, encoding_dim(enc))
        assert torch.equal(labels[0], f) and torch.equal(labels[5], a)
    assert torch.allclose(domain_encoding(ALPHA, "scalar"), torch.tensor([0.0, 1.0]))  # PosEnc(0)


def _attention():
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(0)
    return Attention(query_dim=32, heads=4, dim_head=8).eval()


def test_cross_domain_attention_equals_self_attention_for_identical_domains():
    from diffusers.models.attention_processor import AttnProcessor2_0

    from drip_core.engines.drip.model.cross_domain_attention import CrossDomainAttnProcessor

    attn = _attention()
    h = torch.randn(3, 20, 32)
    batch = torch.cat([h, h], 0)  # [foreground ; alpha], identical tokens
    with torch.no_grad():
        cross = CrossDomainAttnProcessor()(attn, batch)
        plain = AttnProcessor2_0()(attn, batch)
    torch.testing.assert_close(cross, plain, rtol=1e-5, atol=1e-5)


def test_cross_domain_attention_mixes_domains_and_pairs_samples():
    from diffusers.models.attention_processor import AttnProcessor2_0

    from drip_core.engines.drip.model.cross_domain_attention import CrossDomainAttnProcessor

    attn = _attention()
    proc = CrossDomainAttnProcessor()
    fg = torch.randn(2, 10, 32)
    al = torch.randn(2, 10, 32)
    with torch.no_grad():
        out = proc(attn, torch.cat([fg, al], 0))
        plain = AttnProcessor2_0()(attn, torch.cat([fg, al], 0))
        assert not torch.allclose(out, plain, atol=1e-4)  # the other domain matters
        # sample 0's output depends on alpha sample 0 only, not on alpha sample 1
        al2 = al.clone()
        al2[1] += 1.0
        out2 = proc(attn, torch.cat([fg, al2], 0))
        torch.testing.assert_close(out2[0], out[0])
        torch.testing.assert_close(out2[2], out[2])
        assert not torch.allclose(out2[1], out[1])
        # equals explicit attention over the concatenated tokens of the pair
        q = attn.to_q(fg[:1])
        kv_src = torch.cat([fg[:1], al[:1]], 1)
        k, v = attn.to_k(kv_src), attn.to_v(kv_src)

        def split(x):
            return x.view(1, -1, 4, 8).transpose(1, 2)

        ref = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v))
        ref = attn.to_out[0](ref.transpose(1, 2).reshape(1, -1, 32))
        torch.testing.assert_close(out[:1], ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        proc(attn, torch.randn(3, 10, 32))


def test_install_on_every_self_attention_of_a_unet():
    from diffusers import UNet2DConditionModel

    from drip_core.engines.drip.model.cross_domain_attention import (
        CrossDomainAttnProcessor,
        count_cross_domain,
        install_cross_domain_attention,
    )

    unet = UNet2DConditionModel(sample_size=8, in_channels=16, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 64),
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=8, norm_num_groups=8, class_embed_type="projection",
                                projection_class_embeddings_input_dim=2)
    n_attn1 = sum(1 for k in unet.attn_processors if k.endswith("attn1.processor"))
    assert n_attn1 >= 3  # down, mid and up blocks
    assert install_cross_domain_attention(unet) == n_attn1 == count_cross_domain(unet)
    for name, proc in unet.attn_processors.items():
        assert isinstance(proc, CrossDomainAttnProcessor) == name.endswith("attn1.processor")


def test_fresh_transparency_decoder_is_the_plain_decode():
    from drip_core.engines.drip.model.transparency_decoder import TransparencyDecoder
    from drip_core.engines.drip.testing import TINY_DECODER_CONFIG

    torch.manual_seed(0)
    dec = TransparencyDecoder(**TINY_DECODER_CONFIG).eval()
    img, tri = torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 1, 64, 64) * 2 - 1
    fg, al = torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 64, 64) * 2 - 1
    zf, za = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        out = dec(img, tri, fg, al, zf, za)
    assert out.shape == (1, 4, 64, 64)
    torch.testing.assert_close(out[:, :3], fg * 0.5 + 0.5)
    torch.testing.assert_close(out[:, 3:], al.mean(1, keepdim=True) * 0.5 + 0.5)
    # the latent zero-convs and output conv are trainable: one step moves the output
    opt = torch.optim.SGD(dec.parameters(), lr=0.1)
    loss = (dec(img, tri, fg, al, zf, za) - 0.3).pow(2).mean()
    loss.backward()
    assert dec.conv_out.weight.grad.abs().sum() > 0
    opt.step()
    with torch.no_grad():
        assert not torch.allclose(dec(img, tri, fg, al, zf, za), out)


def test_default_decoder_topology_is_layerdiffuse_like():
    from drip_core.engines.drip.model.transparency_decoder import TransparencyDecoder

    dec = TransparencyDecoder()
    assert dec.size_multiple == 64
    assert list(dec.config.block_out_channels) == [32, 32, 64, 128, 256, 512, 512]
    assert sorted(dec.latent_convs.keys()) == ["3", "4", "5", "6"]
    assert all(float(c.weight.detach().abs().sum()) == 0.0 for c in dec.latent_convs.values())


def test_multi_res_noise_is_normalised_and_annealed():
    from drip_core.engines.drip.noise import multi_res_noise

    g = torch.Generator().manual_seed(0)
    t = torch.tensor([999, 0])
    n = multi_res_noise((2, 4, 32, 32), t, generator=g)
    assert n.shape == (2, 4, 32, 32) and torch.isfinite(n).all()
    assert abs(float(n.std()) - 1) < 1e-3  # one global std (Algorithm 1)
    # low-frequency content: neighbouring pixels correlate at t = 999, not at t = 0

    def corr(x):
        return float(torch.corrcoef(torch.stack([x[..., :-1].flatten(), x[..., 1:].flatten()]))[0, 1])

    assert corr(n[0]) > 0.2 > abs(corr(n[1]))
    g2 = torch.Generator().manual_seed(0)
    torch.testing.assert_close(multi_res_noise((2, 4, 32, 32), t, generator=g2), n)


def test_trimap_and_foreground_padding():
    from drip_core.engines.drip.training.data import pad_foreground, sad, trimap_from_alpha

    alpha = np.zeros((64, 64), np.float32)
    alpha[16:48, 16:48] = 1.0
    alpha[16:48, 14:16] = 0.5
    rng = np.random.default_rng(0)
    tri = trimap_from_alpha(alpha, rng)
    assert set(np.unique(tri)) <= {0, 128, 255}
    assert (tri[alpha == 0.5] == 128).all()
    assert (tri == 255).sum() < (alpha == 1).sum() and (tri == 0).sum() < (alpha == 0).sum()
    fg = np.zeros((64, 64, 3), np.float32)
    fg[alpha > 0] = [1.0, 0.0, 0.0]
    padded = pad_foreground(fg, alpha, iterations=16)
    assert np.array_equal(padded[alpha > 0], fg[alpha > 0])  # never changes the object
    assert padded[alpha == 0, 0].max() > 0.3  # red bleeds outward
    assert sad(alpha, alpha, tri) == 0.0


def test_losses_are_finite_and_minimal_at_the_target():
    from drip_core.engines.drip.training.losses import decoder_loss, diffusion_loss

    torch.manual_seed(0)
    fg, al = torch.rand(2, 3, 32, 32), torch.rand(2, 1, 32, 32)
    unknown = (torch.rand(2, 1, 32, 32) > 0.5).float()
    perfect = decoder_loss(torch.cat([fg, al], 1), fg, al, unknown)
    noisy = decoder_loss(torch.rand(2, 4, 32, 32), fg, al, unknown)
    assert torch.isfinite(noisy["loss"]) and float(noisy["loss"]) > 0.01
    # only the 0.01 * |grad pred| regulariser remains at the target
    assert float(perfect["loss"]) < 0.1 * float(noisy["loss"])
    d = diffusion_loss(torch.zeros(4, 4, 8, 8), torch.ones(2, 4, 8, 8), torch.zeros(2, 4, 8, 8))
    assert float(d["loss_fg"]) == 1.0 and float(d["loss_alpha"]) == 0.0


def test_manifest_verification(tmp_path):
    from drip_core.engines.drip.model import folder as mf

    with pytest.raises(mf.ModelFolderError) as e:
        mf.verify_model_folder(tmp_path / "nope")
    assert e.value.code == "model_missing"
    with pytest.raises(mf.ModelFolderError) as e:
        mf.verify_model_folder(tmp_path)
    assert e.value.code == "model_missing"
    for rel in mf.REQUIRED:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * 10)
    m = mf.write_manifest(str(tmp_path), options={"in_channels": 16}, trained=False)
    assert set(m["files"]) == set(mf.REQUIRED) and m["trained"] is False
    assert (tmp_path / mf.HASH_CACHE).is_file()
    assert mf.verify_model_folder(tmp_path)["options"]["in_channels"] == 16
    # same size, new content, mtime changed -> detected even with the cache
    target = tmp_path / "unet" / "config.json"
    st = target.stat()
    target.write_bytes(b"y" * 10)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    with pytest.raises(mf.ModelFolderError) as e:
        mf.verify_model_folder(tmp_path)
    assert e.value.code == "model_corrupt" and "sha256" in e.value.message
    assert mf.verify_model_folder(tmp_path, mode="off")
    target.write_bytes(b"x" * 10)
    mf.verify_model_folder(tmp_path, mode="full")
    manifest = json.loads((tmp_path / mf.MANIFEST).read_text())
    manifest["format_version"] = 99
    (tmp_path / mf.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(mf.ModelFolderError) as e:
        mf.verify_model_folder(tmp_path)
    assert e.value.code == "model_corrupt" and "version 99" in e.value.message


# ------------------------------------------------------- performance options (issue 6)
def _disc(size, h=None):
    h = h or size
    yy, xx = np.mgrid[:h, :size]
    d = np.hypot(yy - h / 2, xx - size / 2) / max(h, size)
    tri = np.where(d < 0.25, 255, np.where(d < 0.42, 128, 0)).astype(np.uint8)
    img = (np.stack([np.sin(yy / 13.0), np.cos(xx / 17.0), np.sin((xx + yy) / 23.0)], -1) * 0.4 + 0.5)
    return img.astype(np.float32), tri


def _run(pipe, img, tri, steps=2):
    return pipe(img, tri, num_inference_steps=steps, generator=torch.Generator().manual_seed(0))


def test_bucketed_size_rule():
    from drip_core.engines.drip.performance import bucketed_size

    assert bucketed_size(100, 64, 0, 1024) == 128            # off: plain multiple
    assert bucketed_size(100, 64, 256, 1024) == 256
    assert bucketed_size(256, 64, 256, 1024) == 256
    assert bucketed_size(900, 64, 256, 1024) == 1024
    assert bucketed_size(900, 64, 384, 1024) == 960          # 1152 > max_side: plain multiple
    assert bucketed_size(700, 64, 96, 1024) == 768           # lcm(64, 96) = 192


def test_bucketing_keeps_size_and_is_exact_on_bucket_sizes():
    from drip_core.engines.drip.testing import tiny_pipeline

    plain = tiny_pipeline(max_side=256)
    bucketed = tiny_pipeline(max_side=256, bucket_size=128)
    img, tri = _disc(128)  # already a bucket multiple: identical work, identical output
    a, b = _run(plain, img, tri), _run(bucketed, img, tri)
    assert np.array_equal(a.alpha, b.alpha) and np.array_equal(a.foreground, b.foreground)
    img, tri = _disc(150, 90)  # plain pads to 128 x 192, 128-px buckets to 128 x 256
    assert plain.working_size(90, 150) == (128, 192) and bucketed.working_size(90, 150) == (128, 256)
    out = _run(bucketed, img, tri)
    assert out.alpha.shape == (90, 150) and out.foreground.shape == (90, 150, 3)
    assert np.isfinite(out.alpha).all()  # known pixels are JobRegion's job, not the pipeline's


def test_tiled_vae_batches_and_matches_untiled_where_it_does_not_trigger():
    from drip_core.engines.drip.testing import tiny_pipeline

    pipe = tiny_pipeline(max_side=256)
    img, tri = _disc(128)
    x = torch.from_numpy(img).permute(2, 0, 1)[None] * 2 - 1
    t = torch.from_numpy(tri.astype(np.float32) / 127.5 - 1)[None, None]
    with torch.no_grad():
        zi, zt = pipe.encode_conditions(x, t)
        dec = pipe.vae_decode(zi, zt)
        pipe.set_vae_tiling(True, 128)  # tile >= input: the plain path, bit for bit
        again = pipe.encode_conditions(x, t) + pipe.vae_decode(zi, zt)
        assert all(torch.equal(u, v) for u, v in zip((zi, zt) + dec, again))
        pipe.set_vae_tiling(True, 64)   # 128 px in 64-px tiles: tiled, batch of [image ; trimap] in one call
        assert pipe.vae.use_tiling and pipe.vae.tile_latent_min_size == 8
        ti, tt = pipe.encode_conditions(x, t)
        alone = pipe.vae.encode(x).latent_dist.mode() * pipe.vae.config.scaling_factor
        torch.testing.assert_close(ti, alone, rtol=1e-4, atol=1e-5)  # batching does not mix items
        tdec = pipe.vae_decode(ti, tt)
        assert ti.shape == zi.shape and all(u.shape == v.shape for u, v in zip(tdec, dec))
        # random tiny weights: GroupNorm and the mid-block attention are global, so tiles differ from
        # the whole; the result must still clearly follow the untiled one
        for u, v in ((zi, ti), (zt, tt)):
            assert torch.corrcoef(torch.stack([u.flatten(), v.flatten()]))[0, 1] > 0.5
    out = _run(pipe, img, tri)
    pipe.set_vae_tiling(False)
    assert not pipe.vae.use_tiling
    assert out.alpha.shape == (128, 128) and np.isfinite(out.alpha).all()
    with pytest.raises(ValueError):
        pipe.set_vae_tiling(True, 100)


def test_compile_serves_eager_until_the_background_compile_is_done():
    import threading

    from drip_core.engines.drip.testing import tiny_pipeline

    pipe = tiny_pipeline(max_side=256)
    img, tri = _disc(64)
    ref = _run(pipe, img, tri)
    release = threading.Event()
    compiled_calls = []

    class Compiled:  # like torch.compile's OptimizedModule: no truth value
        def __init__(self, unet):
            self.unet = unet

        def __len__(self):
            raise TypeError("no len()")

        def __call__(self, *args, **kwargs):
            release.wait(30)  # a compile that takes a while
            compiled_calls.append(tuple(args[0].shape))
            return self.unet(*args, **kwargs)

    slow_compile = Compiled

    cu = pipe.enable_compile("max-autotune-no-cudagraphs", compile_fn=slow_compile)
    out = _run(pipe, img, tri)  # must not wait for the compile
    assert cu.calls["compiled"] == 0 and cu.calls["eager"] == 2 and not cu.ready
    assert np.array_equal(out.alpha, ref.alpha)
    release.set()
    assert cu.wait(30)
    assert cu.ready == {((2, 16, 8, 8), "torch.float32", "cpu")}
    n = len(compiled_calls)
    out = _run(pipe, img, tri)
    assert cu.calls["compiled"] == 2 and len(compiled_calls) == n + 2
    assert np.array_equal(out.alpha, ref.alpha)
    # a shape whose compile fails stays eager, jobs don't fail
    pipe.enable_compile(compile_fn=lambda unet: (lambda *a, **k: 1 / 0), warmup_sizes=(64,))
    assert pipe.compiled_unet.wait(30) and pipe.compiled_unet.failed and not pipe.compiled_unet.ready
    assert np.array_equal(_run(pipe, img, tri).alpha, ref.alpha)
    pipe.disable_compile()
    with pytest.raises(ValueError):
        pipe.enable_compile("fast")


def test_compile_cache_goes_to_a_persistent_user_folder(tmp_path, monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from drip_core.engines.drip.performance import configure_compile_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # torch's own /tmp default
    import sys

    if os.name == "posix" and not sys.platform.startswith("darwin"):
        assert configure_compile_cache() == str(tmp_path / "cache" / "drip-matting" / "torchinductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))  # a user's choice is kept
    assert configure_compile_cache() == str(tmp_path / "mine") and os.path.isdir(tmp_path / "mine")
    assert configure_compile_cache(str(tmp_path / "arg")) == str(tmp_path / "arg")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "arg")
