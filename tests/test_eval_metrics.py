"""DIM metrics: unit checks plus the reference means on the alphamatting.com low-res set."""
import numpy as np
import pytest
from scipy import ndimage

from drip_core.eval.dataset import default_data_dir, load_sample, sample_names
from drip_core.eval.metrics import (
    _gauss_kernels,
    alpha_errors,
    clamp_to_trimap,
    connectivity_error,
    foreground_errors,
    gradient_error,
    mse,
    sad,
)

DATA = default_data_dir()
needs_data = pytest.mark.skipif(DATA is None,
                                reason="alphamatting_lowres data not found (set DRIP_ALPHAMATTING_DIR)")

# mean over the 27 images: SAD, MSE x1e3, Grad, Conn (docs: matting-anchors-and-metrics.md §1.3)
REFERENCE = {
    ("Trimap1", "half"): (31.8467, 199.6609, 54.8489, 32.3196),
    ("Trimap1", "blur2"): (4.6398, 10.2727, 7.4503, 4.0485),
    ("Trimap2", "half"): (47.9628, 214.6280, 52.9869, 48.4718),
    ("Trimap2", "blur2"): (4.6421, 6.9007, 7.4510, 4.0485),
}


def _predict(kind, s):
    if kind == "half":
        pred = s.gt.copy()
        pred[s.trimap == 128] = 128
        return pred
    blurred = ndimage.gaussian_filter(s.gt.astype(np.float64), 2)
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def means():
    """Means of both Conn precisions for each reference case (one pass over the data)."""
    out = {}
    for trimap in ("Trimap1", "Trimap2"):
        samples = [load_sample(DATA, n, trimap) for n in sample_names(DATA)]
        for kind in ("half", "blur2"):
            rows = []
            for s in samples:
                pred = clamp_to_trimap(_predict(kind, s), s.trimap)
                e = alpha_errors(pred, s.gt, s.trimap)
                rows.append((e.sad, e.mse * 1e3, e.grad, e.conn,
                             connectivity_error(pred, s.gt, s.trimap, precision="single")))
            out[(trimap, kind)] = np.mean(rows, axis=0)
    return out


@needs_data
@pytest.mark.parametrize("case", sorted(REFERENCE))
def test_reference_means(means, case):
    got = means[case]
    ref = REFERENCE[case]
    # All four to 0.01 with the defaults (Conn as the float64 ports compute it)
    np.testing.assert_allclose(got[:4], ref, atol=0.01)
    # MATLAB's single precision puts 153/255 on the 0.6 threshold: within 0.3 % of the port
    assert abs(got[4] - ref[3]) <= 0.003 * ref[3] + 0.01


def test_gaussgradient_kernel_size():
    g, dg = _gauss_kernels(1.4)
    assert len(g) == 9 and len(dg) == 9  # halfsize 4 as in gaussgradient.m
    assert np.isclose(np.linalg.norm(np.outer(g, dg)), 1.0)


def test_perfect_prediction_is_zero():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (40, 50)).astype(np.uint8)
    tri = np.full_like(gt, 128)
    tri[:5] = 0
    gt[:5] = 0
    e = alpha_errors(gt, gt, tri)
    assert e.sad == e.mse == e.grad == e.conn == 0.0


def test_sad_mse_hand_values():
    gt = np.array([[0, 255, 100]], np.uint8)
    pred = np.array([[255, 0, 100]], np.uint8)
    tri = np.array([[128, 128, 0]], np.uint8)
    assert sad(pred, gt, tri) == pytest.approx(2 / 1000)
    assert mse(pred, gt, tri) == pytest.approx(1.0)
    assert gradient_error(pred, pred, tri) == 0.0


def test_clamping_applies_known_regions():
    gt = np.zeros((8, 8), np.uint8)
    tri = np.zeros((8, 8), np.uint8)
    tri[2:6, 2:6] = 128
    pred = np.full((8, 8), 200, np.uint8)
    pred[2:6, 2:6] = 0
    assert alpha_errors(pred, gt, tri).as_dict() == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}
    assert alpha_errors(pred, gt, tri, clamp=False).grad > 0


def test_rejects_float_inputs():
    with pytest.raises(ValueError):
        sad(np.zeros((2, 2)), np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))


def test_foreground_error_variants():
    a = np.array([[0.0, 0.5, 1.0, 0.25]])
    tri = np.array([[128, 128, 255, 0]], np.uint8)
    gt = np.zeros((1, 4, 3))
    pred = np.full((1, 4, 3), 0.5)
    germer = foreground_errors(pred, gt, a, variant="germer")  # region: alpha 0.5 and 0.25
    assert germer.sad == pytest.approx((0.5 * 0.5 * 3 + 0.25 * 0.5 * 3) / 1000)
    assert germer.mse == pytest.approx((0.5 * 0.25 + 0.25 * 0.25) / 2)
    unknown = foreground_errors(pred, gt, a, tri, variant="unknown")  # region: first two pixels
    assert unknown.sad == pytest.approx(0.5 * 0.5 * 3 / 1000)
    assert unknown.mse == pytest.approx(0.5 * 0.25 / 2)
    with pytest.raises(ValueError):
        foreground_errors(pred, gt, a, variant="nope")


def test_cli_error_is_one_line(tmp_path, capsys):
    from drip_core.eval.__main__ import main

    assert main(["--data", str(tmp_path / "missing"), "--engine", "classical"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("drip-eval: error:") and "\n" not in err and "Traceback" not in err


def test_cli_unknown_engine(capsys, tmp_path):
    from drip_core.eval.__main__ import main

    (tmp_path / "input_x").mkdir()
    (tmp_path / "input_x" / "a.png").write_bytes(b"")
    assert main(["--data", str(tmp_path), "--engine", "nope"]) == 1
    assert "unknown engine" in capsys.readouterr().err


@needs_data
def test_cli_writes_json(tmp_path, capsys):
    import json

    from drip_core.eval.__main__ import main

    out = tmp_path / "r.json"
    assert main(["--data", str(DATA), "--engine", "classical", "--limit", "1", "--json", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert runs[0]["trimap"] == "Trimap1" and runs[0]["images"][0]["name"] == "GT01"
    assert set(runs[0]["mean"]) == {"sad", "mse", "grad", "conn", "seconds"}
    assert runs[0]["mean"]["sad"] < 2.0  # GT01 is an easy image (about 1.1)
    assert "mean" in capsys.readouterr().out
