"""Classical engine v2 terms (issue 11), each against a small hand-checked case:
K-to-U information flow (LLE weights), patch-based trimming (Bhattacharyya), the
transparency check and the closed-form solver's extra data term."""
import numpy as np
import pytest

from drip_core.engines import get_engine
from drip_core.engines.classical.data_term.information_flow import known_to_unknown, lle_weights
from drip_core.engines.classical.data_term.priors import alpha_priors, confidence
from drip_core.engines.classical.data_term.transparency import (
    is_transparent,
    mix_fit,
    transparency_score,
)
from drip_core.engines.classical.data_term.trimming import (
    KnownPatches,
    bhattacharyya,
    decide,
    neighbour_distances,
    patch_gaussians,
    trim,
)
from drip_core.engines.classical.solve.closed_form import closed_form_alpha

F = np.array([0.9, 0.3, 0.2])
B = np.array([0.1, 0.4, 0.8])


def _strip(h=12, w=20, mix=0.3):
    """Left: known foreground F; right: known background B; the middle columns unknown,
    coloured mix F + (1 - mix) B exactly."""
    img = np.empty((h, w, 3))
    img[:, : w // 2 - 2] = F
    img[:, w // 2 - 2: w // 2 + 2] = mix * F + (1 - mix) * B
    img[:, w // 2 + 2:] = B
    tri = np.full((h, w), 128, np.uint8)
    tri[:, : w // 2 - 2] = 255
    tri[:, w // 2 + 2:] = 0
    return img, tri


# --- K-to-U: LLE weights ---------------------------------------------------------------

def test_lle_weights_reproduce_an_exact_mix():
    # 7 foreground neighbours of colour F, 7 background of colour B, the pixel 0.3 F + 0.7 B:
    # the min-norm affine weights are 0.3 / 7 on each F and 0.7 / 7 on each B
    centre = (0.3 * F + 0.7 * B)[None]
    nbrs = np.concatenate([np.tile(F, (7, 1)), np.tile(B, (7, 1))])[None]
    w = lle_weights(centre, nbrs)
    np.testing.assert_allclose(w[0, :7], 0.3 / 7, atol=1e-9)
    np.testing.assert_allclose(w[0, 7:], 0.7 / 7, atol=1e-9)
    np.testing.assert_allclose((w[..., None] * nbrs).sum(axis=1), centre, atol=1e-9)


def test_lle_weights_general_neighbours_sum_to_one_and_reconstruct():
    rng = np.random.default_rng(0)
    nbrs = rng.random((50, 14, 3))
    coef = rng.dirichlet(np.ones(14), 50)           # the centres are inside the neighbours' hull
    centre = np.einsum("nk,nki->ni", coef, nbrs)
    w = lle_weights(centre, nbrs)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.einsum("nk,nki->ni", w, nbrs), centre, atol=1e-6)


def test_lle_weights_flat_neighbourhood_are_uniform():
    w = lle_weights(F[None], np.tile(F, (1, 14, 1)))
    np.testing.assert_allclose(w, 1 / 14)


def test_known_to_unknown_alpha_hat_and_confidence():
    img, tri = _strip(mix=0.3)
    flow = known_to_unknown(img, tri)
    assert flow.idx.size == (tri == 128).sum()
    np.testing.assert_allclose(flow.alpha_hat, 0.3, atol=1e-6)
    # eta = |sum_F w c - sum_B w c|^2 / 3 = |0.3 F - 0.7 B|^2 / 3
    np.testing.assert_allclose(flow.eta, ((0.3 * F - 0.7 * B) ** 2).sum() / 3, atol=1e-6)
    np.testing.assert_allclose(flow.fg, np.broadcast_to(F, flow.fg.shape), atol=1e-6)
    np.testing.assert_allclose(flow.bg, np.broadcast_to(B, flow.bg.shape), atol=1e-6)
    assert np.isin(tri.flat[flow.nf], [255]).all() and np.isin(tri.flat[flow.nb], [0]).all()


def test_grouped_searches_keep_each_pixels_own_weights():
    # 2x2 blocks share one neighbour search, but alpha_hat follows each pixel's own colour
    img, tri = _strip(mix=0.3)
    img[::2, 8:12] = 0.6 * F + 0.4 * B
    flow = known_to_unknown(img, tri, group_px=2)
    ys = flow.idx // tri.shape[1]
    np.testing.assert_allclose(flow.alpha_hat[ys % 2 == 0], 0.6, atol=1e-6)
    np.testing.assert_allclose(flow.alpha_hat[ys % 2 == 1], 0.3, atol=1e-6)


def test_confidence_follows_the_flows_colour_separation():
    img, tri = _strip(mix=0.3)
    flow = known_to_unknown(img, tri)
    sep = ((F - B) ** 2).sum() / 3
    # an exact mix of F and B: no mixture residual, confidence sep^2
    np.testing.assert_allclose(confidence(img, flow), sep ** 2, rtol=1e-6)
    # foreground and background alike (hair before similar colours): alpha_hat is not trusted
    flow.bg = flow.fg.copy()
    np.testing.assert_allclose(confidence(img, flow, tau=0.0), 0.0)


def test_known_to_unknown_needs_both_sides():
    img, tri = _strip()
    tri[tri == 255] = 128
    assert known_to_unknown(img, tri) is None


# --- closed form with the extra data term -------------------------------------------------

def test_prior_term_pulls_alpha_to_its_target():
    img, tri = _strip(mix=0.3)
    weight = np.where(tri == 128, 1e6, 0.0)
    alpha = closed_form_alpha(img, tri, 1e-8, 1e-6, prior_weight=weight, prior_alpha=np.full(tri.shape, 0.3))
    np.testing.assert_allclose(alpha[tri == 128], 0.3, atol=1e-4)
    # zero weight: the plain closed form
    plain = closed_form_alpha(img, tri, 1e-8, 1e-6)
    zero = closed_form_alpha(img, tri, 1e-8, 1e-6, prior_weight=np.zeros(tri.shape),
                             prior_alpha=np.ones(tri.shape))
    np.testing.assert_allclose(zero, plain, atol=1e-6)


def test_prior_on_tiny_images():
    img = np.random.default_rng(3).random((2, 5, 3))
    tri = np.full((2, 5), 128, np.uint8)
    tri[:, 0], tri[:, -1] = 0, 255
    stats = {}
    a = closed_form_alpha(img, tri, 1e-8, 1e-3, prior_weight=np.full((2, 5), 0.1),
                          prior_alpha=np.full((2, 5), 0.5), stats=stats)
    assert a.shape == (2, 5) and np.isfinite(a).all() and "iterations" in stats


# --- patch-based trimming -----------------------------------------------------------------

def test_bhattacharyya_hand_values():
    cov = np.array([0.01, 0, 0, 0.01, 0, 0.01])
    assert bhattacharyya(F, cov, F, cov) == pytest.approx(0.0, abs=1e-12)
    # equal covariances s^2 I: D = |d|^2 / (8 s^2)
    d = np.array([0.1, 0.0, 0.0])
    assert bhattacharyya(F, cov, F + d, cov) == pytest.approx(0.01 / (8 * 0.01))
    # equal means, covariances s1^2 I and s2^2 I: D = 3/2 ln((s1^2 + s2^2) / (2 s1 s2))
    cov2 = cov * 4
    assert bhattacharyya(F, cov, F, cov2) == pytest.approx(1.5 * np.log(0.05 / (2 * 0.01 * 2)))


def test_patch_gaussians_flat_and_edge():
    img = np.zeros((3, 3, 3))
    img[:, 2] = 1.0  # one column of 1s in the 3x3 patch around the centre
    mu, cov = patch_gaussians(img, np.array([4]), reg=0.0)
    np.testing.assert_allclose(mu[0], 1 / 3)
    np.testing.assert_allclose(cov[0], 2 / 9)  # every channel pair: E[xy] - E[x]E[y] = 1/3 - 1/9
    mu, cov = patch_gaussians(np.full((4, 4, 3), 0.5), np.array([0, 5]))
    np.testing.assert_allclose(mu, 0.5)
    np.testing.assert_allclose(cov, [[1e-8, 0, 0, 1e-8, 0, 1e-8]] * 2)


def _trim_scene():
    """The unknown strip of _strip, holding a 5x5 block of the flat foreground colour."""
    img, tri = _strip(h=20, w=30, mix=0.5)
    img[5:10, 13:18] = F          # inside the unknown strip (columns 13..16) and beyond
    tri[5:10, 13:17] = 128
    return img, tri


def test_trimming_marks_a_pixel_inside_a_flat_known_coloured_patch():
    img, tri = _trim_scene()
    out = trim(img, tri)
    assert out[7, 14] == 255 and out[7, 15] == 255   # whole 3x3 patch flat F: D_F = 0, D_B huge
    assert out[15, 14] == 128 and out[15, 15] == 128  # the 50 % mix matches neither side
    assert (out[tri != 128] == tri[tri != 128]).all()


def test_patch_gaussians_of_every_pixel_match_the_chosen_ones():
    img = np.random.default_rng(1).random((7, 9, 3))
    mu_all, cov_all = patch_gaussians(img, np.arange(img.shape[0] * img.shape[1]))
    idx = np.array([0, 8, 31, 62])
    mu, cov = patch_gaussians(img, idx)
    np.testing.assert_allclose(mu_all[idx], mu)
    # by hand: pixel 31 (row 3, column 4) is interior, its patch rows 2..4, columns 3..5
    patch = img[2:5, 3:6].reshape(-1, 3)
    np.testing.assert_allclose(mu[2], patch.mean(axis=0))
    np.testing.assert_allclose(cov[2, 1],
                               np.mean(patch[:, 0] * patch[:, 1]) - patch[:, 0].mean() * patch[:, 1].mean())


def test_known_patches_nothing_within_the_radius_is_infinitely_far():
    mu, cov = patch_gaussians(np.full((4, 4, 3), 0.5), np.arange(16))
    side = KnownPatches(mu, cov, np.ones((4, 4), bool))
    d = side.min_distance(np.array([[0.5, 0.5, 0.5], [0.9, 0.5, 0.5]]), cov[:2])
    assert d[0] == pytest.approx(0.0, abs=1e-9) and d[1] == np.inf
    empty = KnownPatches(mu, cov, np.zeros((4, 4), bool))
    assert np.isinf(empty.min_distance(mu[:2], cov[:2])).all()


def test_trimming_restricted_to_open_decisions_equals_filtering_afterwards():
    img, tri = _trim_scene()
    img[12:, 13:15], img[12:, 15:17] = 0.95 * F, 1.05 * B
    full = trim(img, tri)
    rng = np.random.default_rng(2)
    may_fg, may_bg = rng.random(tri.shape) < 0.5, rng.random(tri.shape) < 0.5
    restricted = trim(img, tri, may_fg, may_bg)
    expected = np.where(((full == 255) & may_fg) | ((full == 0) & may_bg), full, tri)
    np.testing.assert_array_equal(restricted, expected)
    assert (full != tri).sum() > (restricted != tri).sum() > 0


def test_trimming_on_the_flow_neighbours_agrees():
    img, tri = _trim_scene()
    flow = known_to_unknown(img, tri)
    label = decide(*neighbour_distances(img, flow.idx, flow.nf, flow.nb))
    got = dict(zip(flow.idx.tolist(), label.tolist()))
    w = tri.shape[1]
    assert got[7 * w + 14] == 1 and got[7 * w + 15] == 1
    assert got[15 * w + 14] == -1


def test_decide_thresholds():
    d_f = np.array([0.1, 0.1, 2.0, 0.5])
    d_b = np.array([2.0, 0.5, 0.1, 2.0])
    np.testing.assert_array_equal(decide(d_f, d_b), [1, -1, 0, -1])


# --- transparency check -------------------------------------------------------------------

def test_mix_fit_hand_values():
    h_f, h_b = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    beta, score = mix_fit(np.array([0.25, 0.75, 0]), h_f, h_b)
    assert beta == pytest.approx(0.25) and score == pytest.approx(0.0)
    beta, score = mix_fit(np.array([0, 0, 1.0]), h_f, h_b)  # a colour neither side has
    assert score == pytest.approx(1.0)


def test_transparency_check_and_fallback():
    # opaque: the unknown pixels are pure F or pure B colours
    img, tri = _strip()
    img[:, 8:10], img[:, 10:12] = F, B
    assert transparency_score(img, tri) < 0.05 and not is_transparent(img, tri)
    # veil: every unknown pixel is a mix, a colour neither known side has
    img, tri = _strip(mix=0.5)
    assert transparency_score(img, tri) > 0.95 and is_transparent(img, tri)
    priors = alpha_priors(img, tri)
    assert priors.transparent and priors.weight is None and priors.trimap is tri


def test_engine_runs_v2_and_reports_stages():
    img, tri = _trim_scene()
    img[12:, 13:15], img[12:, 15:17] = F, B  # mostly opaque colours: the transparency check passes
    engine = get_engine("classical")
    matte = engine.matte((img * 255).round().astype(np.uint8), tri)
    assert np.isfinite(matte.alpha).all()
    assert matte.alpha[7, 14] == 1.0  # trimmed to foreground
    stats = matte.stats
    assert not stats["transparent"]
    assert stats["trimmed"] > 0 and stats["iterations"] >= 0 and "flow" in stats and "solve" in stats


def test_trimming_kept_only_where_the_flow_agrees():
    img, tri = _trim_scene()
    img[12:, 13:15], img[12:, 15:17] = F, B
    assert alpha_priors(img, tri).trimmed > 0
    # agreement within 0 is impossible: every decision is dropped, the trimap stays as given
    none = alpha_priors(img, tri, agree_within=0.0)
    assert none.trimmed == 0 and none.trimap is tri and none.weight is not None


def test_patch_gaussians_by_slabs_match_one_slab(monkeypatch):
    """The moments are box-filtered a slab of rows at a time (memory follows the slab): slab
    edges, unsorted and repeated indices give the same values as one slab for the whole image."""
    from drip_core.engines.classical.data_term import trimming
    img = np.random.default_rng(2).random((23, 11, 3)).astype(np.float32)
    idx = np.array([200, 0, 252, 11, 12, 120, 0, 98])
    whole = patch_gaussians(img, idx)
    monkeypatch.setattr(trimming, "CHUNK_PIXELS", 22)  # 2 rows per slab
    slabs = patch_gaussians(img, idx)
    np.testing.assert_allclose(slabs[0], whole[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(slabs[1], whole[1], rtol=0, atol=1e-12)


def _band_scene(h=100, w=120, seed=3):
    """Textured foreground (right) and background (left) in two colour ranges, a 10-px unknown band
    whose pixels mix them, and a trimap."""
    rng = np.random.default_rng(seed)
    fg, bg = 0.5 + 0.5 * rng.random((h, w, 3)), 0.5 * rng.random((h, w, 3))
    a = np.clip((np.arange(w) - 50) / 10.0, 0, 1)[None, :, None] * np.ones((h, 1, 1))
    img = a * fg + (1 - a) * bg
    tri = np.where(np.arange(w) < 50, 0, 255).astype(np.uint8)[None, :].repeat(h, 0)
    tri[:, 50:60] = 128
    return img, tri


def test_the_known_patches_of_an_edit_are_the_edited_trimaps_own():
    """A local re-solve updates the whole region's known patches only within trimming's band of
    the edit (local_resolve.py): the result is the set the edited trimap itself gives."""
    from drip_core.engines.classical.data_term.trimming import BAND, patches_near_unknown

    def known_patch_set(image, trimap):
        return patches_near_unknown(image, trimap).known
    img, tri = _band_scene()
    edited = tri.copy()
    edited[40:50, 45:65] = 255                      # white painted across the band
    reach = (slice(40 - BAND - 1, 50 + BAND + 1), slice(45 - BAND - 1, 65 + BAND + 1))
    window = (slice(reach[0].start - BAND - 1, reach[0].stop + BAND + 1),
              slice(reach[1].start - BAND - 1, reach[1].stop + BAND + 1))
    updated = known_patch_set(img, tri).replaced(
        reach, known_patch_set(img[window], edited[window]).shifted(window[0].start, window[1].start))
    expected = known_patch_set(img, edited)
    for name in ("rows", "cols", "fg"):
        np.testing.assert_array_equal(getattr(updated, name), getattr(expected, name))
    np.testing.assert_allclose(updated.mu, expected.mu, atol=1e-12)
    np.testing.assert_allclose(updated.cov, expected.cov, atol=1e-12)
    assert not np.array_equal(known_patch_set(img, tri).rows, expected.rows)   # the edit did change it


def test_trimming_decisions_ignore_known_patches_that_match_nothing():
    """Exact searches: known patches of colours far from every unknown one (a brush stroke
    elsewhere in the region) change no decision, whatever they do to the search tree."""
    from drip_core.engines.classical.data_term.trimming import (
        RADIUS,
        KnownPatchSet,
        patches_near_unknown,
    )
    img, tri = _band_scene()
    img[30:70, 50:60] = img[30:70, 70:80]           # foreground texture inside the band: decidable
    patches = patches_near_unknown(img, tri)
    known = patches.known
    rng = np.random.default_rng(4)
    n = 5000
    far = KnownPatchSet(np.full(n, 10_000, np.int32), np.arange(n, dtype=np.int32), rng.random(n) < 0.5,
                        1.2 + RADIUS + rng.random((n, 3)), known.cov[rng.integers(0, known.fg.size, n)])
    both = known.replaced((slice(10_000, 10_001), slice(0, n)), far)
    alone, extended = trim(img, tri, patches=patches), trim(img, tri, patches=patches._replace(known=both))
    assert (alone != tri).sum() > 50
    np.testing.assert_array_equal(alone, extended)
