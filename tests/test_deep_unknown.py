"""Deep unknown pixels (issue 12: a large region painted grey): patch-based trimming decides
them even where the K-to-U flow disagrees, unless the decision stands alone.

The synthetic scene is GT24's tuft in small: a smooth purple curtain above, purple fur (the same
mean colour, textured) below, and a square painted grey across the edge, with no known pixel
inside: the flow's neighbours for the square's middle are 40+ px away."""
import numpy as np

from drip_core.engines import get_engine
from drip_core.engines.classical.data_term import deep_unknown, trimming
from drip_core.engines.classical.data_term.deep_unknown import DENSITY, FAR, WINDOW, deep_pixels, trim


def _scene(seed=0, h=140, w=140, margin=20):
    """(image float32, trimap, GT alpha): curtain (alpha 0) above, fur (alpha 1) below, the
    square [margin, h - margin) x [margin, w - margin) unknown."""
    rng = np.random.default_rng(seed)
    purple = np.array([0.55, 0.45, 0.65])
    img = np.empty((h, w, 3))
    img[:] = purple + np.linspace(-0.1, 0.1, h)[:, None, None]    # smooth curtain
    fur = np.zeros((h, w), bool)
    fur[h // 2:] = True
    img[fur] = purple + rng.normal(0, 0.08, (fur.sum(), 3))        # textured fur, same mean colour
    tri = np.where(fur, 255, 0).astype(np.uint8)
    tri[margin:h - margin, margin:w - margin] = 128
    return np.clip(img, 0, 1).astype(np.float32), tri, fur.astype(np.float64)


def test_deep_pixels_are_the_ones_far_from_any_known_pixel():
    _, tri, _ = _scene()
    deep = deep_pixels(tri == 128)
    assert deep[70, 70] and not deep[19 + FAR, 70] and deep[20 + FAR, 70]   # row 19 is known
    assert not deep[tri != 128].any()
    band = np.zeros((100, 100), np.uint8)
    band[:, 50:] = 255
    band[:, 50 - FAR:50 + FAR] = 128               # a band 2 FAR wide: nothing deep
    assert not deep_pixels(band == 128).any()
    assert trim(np.zeros((100, 100, 3), np.float32), band, *(np.zeros((100, 100), bool),) * 2)[1] == 0


def test_deep_decisions_are_kept_against_the_flow():
    img, tri, gt = _scene()
    closed = np.zeros(tri.shape, bool)             # a flow that agrees with no decision
    assert (trimming.trim(img, tri, closed, closed) == tri).all()
    out, kept = trim(img, tri, closed, closed)
    decided = (out != tri)
    deep = deep_pixels(tri == 128)
    assert kept == decided.sum() and not (decided & ~deep).any()   # the gate opens on deep pixels only
    assert decided.sum() > 0.3 * deep.sum()
    right = (out[decided] == 255) == (gt[decided] == 1)
    assert right.mean() > 0.97
    assert (out[decided] == 255).any() and (out[decided] == 0).any()   # fur and curtain both


def test_an_opened_decision_standing_alone_is_dropped():
    rng = np.random.default_rng(1)
    h = w = 120
    img = rng.random((h, w, 3)).astype(np.float32)      # noise neither side has
    tri = np.full((h, w), 128, np.uint8)
    tri[:6], tri[-6:] = 0, 255
    img[:6] = img[-6:] = 0.0
    img[-6:, :, 0] = 1.0                                 # curtain black, fur red: flat known patches
    img[30:33, 30:33] = 0.0                              # one curtain pixel (a flat 3x3 patch) alone
    img[60:75, 60:75] = 0.0                              # a 15x15 stretch of curtain
    closed = np.zeros(tri.shape, bool)
    assert trim(img, tri, closed, closed, density=0.0)[0][31, 31] == 0   # trimming decides it ...
    out, kept = trim(img, tri, closed, closed)
    assert out[31, 31] == 128                            # ... but alone: 1 / 49 < DENSITY of its window
    assert (out[62:73, 62:73] == 0).all() and kept >= 11 * 11
    assert 1 / WINDOW ** 2 < DENSITY


def test_engine_leaves_less_haze_in_a_painted_square(monkeypatch):
    engine = get_engine("classical")
    errors = {}
    for rule in ("deep", "gated only"):
        if rule == "gated only":  # the engine as before: trimming kept where the flow agrees
            monkeypatch.setattr(deep_unknown, "trim",
                                lambda image, trimap, f, b, **k: (trimming.trim(image, trimap, f, b, **k), 0))
        errors[rule] = []
        for seed in range(3):
            img, tri, gt = _scene(seed)
            matte = engine.matte((img * 255).round().astype(np.uint8), tri)
            alpha = matte.alpha
            errors[rule].append(np.abs(alpha - gt)[tri == 128].sum())
        if rule == "deep":
            assert matte.stats["deep"] > 0
    assert all(a < 0.9 * b for a, b in zip(errors["deep"], errors["gated only"])), errors


def test_no_deep_pixels_means_plain_trimming():
    img, tri, _ = _scene(margin=60)                      # a 20-px square: every pixel near a known one
    assert not deep_pixels(tri == 128).any()
    rng = np.random.default_rng(2)
    may = [rng.random(tri.shape) < 0.5 for _ in range(2)]
    out, kept = trim(img, tri, *may)
    assert kept == 0 and (out == trimming.trim(img, tri, *may)).all()
