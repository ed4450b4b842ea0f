"""Training learns (issue 14): the shipped drip-train and drip-train-decoder, run on a tiny
SD2-shaped model (its VAE first fitted as an autoencoder) and synthetic composites, must cut
the unknown-region alpha SAD on those composites at least 2x against the untrained model, and
the decoder stage must lower the foreground error. Figures are printed (pytest -s).
bench/drip_learning.py runs the same experiment with the default (longer) schedule."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")


# a shorter schedule than the benchmark's, to stay within a few CPU minutes
STAGE1, STAGE2, VAE, VAE_BATCH = 300, 100, 200, 4


@pytest.mark.slow
def test_training_lowers_alpha_sad_and_foreground_error(tmp_path):
    from drip_core.engines.drip.testing import learning_check

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster and leaves the other core free
    try:
        fig = learning_check(str(tmp_path), stage1_steps=STAGE1, stage2_steps=STAGE2, vae_steps=VAE,
                             vae_batch=VAE_BATCH, log=print)
    finally:
        torch.set_num_threads(threads)
    u, s1, s2 = fig["untrained"], fig["stage1"], fig["stage2"]
    print(f"alpha SAD {u['alpha_sad']:.4f} -> {s1['alpha_sad']:.4f} -> {s2['alpha_sad']:.4f}; "
          f"foreground SAD {u['fg_sad']:.4f} -> {s1['fg_sad']:.4f} -> {s2['fg_sad']:.4f}; {fig['seconds']} s")
    assert s1["alpha_sad"] * 2 <= u["alpha_sad"]
    assert s2["fg_sad"] < s1["fg_sad"]
