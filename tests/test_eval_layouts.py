"""drip-eval's Composition-1k and AIM-500 layouts on small synthetic folders, with the alpha
and foreground figures checked against values computed by hand."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from drip_core.engines.base import Matte
from drip_core.eval.layouts import open_layout
from drip_core.eval.metrics import alpha_errors

H, W = 8, 10
FG_RGB = (51, 102, 153)  # 0.2, 0.4, 0.6


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trimap: columns 0-2 background, 3-6 unknown, 7-9 foreground. Alpha in the unknown
    columns: 0, 64, 191, 255. Foreground: one colour."""
    tri = np.zeros((H, W), np.uint8)
    tri[:, 3:7] = 128
    tri[:, 7:] = 255
    alpha = np.zeros((H, W), np.uint8)
    alpha[:, 3:7] = [0, 64, 191, 255]
    alpha[:, 7:] = 255
    fg = np.empty((H, W, 3), np.uint8)
    fg[:] = FG_RGB
    return tri, alpha, fg


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def comp1k(tmp_path):
    """Two foregrounds x two backgrounds, named as the Adobe composition script names them."""
    tri, alpha, fg = _scene()
    root = tmp_path / "Composition-1k-testset"
    for stem in ("sieve-641426_1920", "plant"):
        _save(root / "alpha" / f"{stem}.png", alpha)
        _save(root / "fg" / f"{stem}.png", fg)
        for k in range(2):
            _save(root / "merged" / f"{stem}_{k}.png", np.full((H, W, 3), 90 + k, np.uint8))
            _save(root / "trimaps" / f"{stem}_{k}.png", tri)
    return root


class HalfEngine:
    """Alpha 0.5 everywhere (128 once quantised), black foreground."""
    name = "half"

    def matte(self, image, trimap):
        h, w = trimap.shape
        return Matte(np.zeros((h, w, 3), np.float32), np.full((h, w), 0.5, np.float32), self.name)


# hand computations for HalfEngine on _scene(), unknown columns alpha 0, 64, 191, 255
SAD = H * (128 + 64 + 63 + 127) / 255 / 1000
MSE = (128 ** 2 + 64 ** 2 + 63 ** 2 + 127 ** 2) / 4 / 255 ** 2
# foreground (DRIP/FBA): unknown pixels with alpha > 0 -> columns 4, 5, 6 (24 pixels), weights
# a = 64/255, 191/255, 1; predicted F = 0, so |a F - a F_gt| = a * F_gt per channel
_a = np.array([64, 191, 255]) / 255
_f = np.array(FG_RGB) / 255
FG_SAD = H * _a.sum() * _f.sum() / 1000
FG_MSE = H * (_a ** 2).sum() * (_f ** 2).sum() / (3 * 3 * H)


def test_comp1k_layout_pairs_composites_with_their_foreground(comp1k):
    layout = open_layout("comp1k", comp1k)
    assert layout.names() == ["plant_0", "plant_1", "sieve-641426_1920_0", "sieve-641426_1920_1"]
    s = layout.load("sieve-641426_1920_1")
    tri, alpha, fg = _scene()
    assert np.array_equal(s.trimap, tri) and np.array_equal(s.gt, alpha) and np.array_equal(s.fg, fg)
    assert s.image[0, 0, 0] == 91


def test_comp1k_scores_match_hand_computed_values(comp1k):
    from drip_core.eval.runner import evaluate_layout

    run = evaluate_layout(open_layout("comp1k", comp1k), HalfEngine())
    assert len(run.rows) == 4
    m = run.mean()
    assert m["sad"] == pytest.approx(SAD) and m["mse"] == pytest.approx(MSE)
    assert m["fg_sad"] == pytest.approx(FG_SAD) and m["fg_mse"] == pytest.approx(FG_MSE)
    tri, alpha, _ = _scene()
    ref = alpha_errors(np.full((H, W), 128, np.uint8), alpha, tri)
    assert m["grad"] == pytest.approx(ref.grad) and m["conn"] == pytest.approx(ref.conn) and ref.grad > 0


def test_alpha_copy_folder_and_aim500_layout(tmp_path):
    tri, alpha, _ = _scene()
    root = tmp_path / "c1k"
    _save(root / "merged" / "a_0.png", np.zeros((H, W, 3), np.uint8))
    _save(root / "trimaps" / "a_0.png", tri)
    _save(root / "alpha_copy" / "a_0.png", alpha)  # per-composite copies (GCA's alpha_copy)
    s = open_layout("comp1k", root).load("a_0")
    assert np.array_equal(s.gt, alpha) and s.fg is None

    aim = tmp_path / "AIM-500"
    _save(aim / "original" / "o_1.jpg", np.zeros((H, W, 3), np.uint8))
    _save(aim / "trimap" / "o_1.png", tri)
    _save(aim / "mask" / "o_1.png", alpha)
    from drip_core.eval.runner import evaluate_layout

    run = evaluate_layout(open_layout("aim500", aim), HalfEngine())
    assert run.mean()["sad"] == pytest.approx(SAD)
    assert "fg_sad" not in run.rows[0]  # AIM-500 has no foreground ground truth


def test_cli_comp1k(comp1k, tmp_path, capsys, monkeypatch):
    import drip_core.engines as engines
    from drip_core.eval.__main__ import main

    monkeypatch.setattr(engines, "get_engine", lambda name, **kw: HalfEngine())
    out = tmp_path / "r.json"
    assert main(["--layout", "comp1k", str(comp1k), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fgSAD" in text and "sieve-641426_1920_0" in text
    report = json.loads(out.read_text())
    assert report["layout"] == "comp1k" and report["fg_variant"] == "drip"
    mean = report["runs"][0]["mean"]
    assert mean["sad"] == pytest.approx(SAD) and mean["fg_mse"] == pytest.approx(FG_MSE)
    # the whole-image variant counts the fully opaque columns too (F is 0 there, weight 1)
    assert main(["--layout", "comp1k", str(comp1k), "--fg-variant", "drip-all", "--json", str(out)]) == 0
    mean_all = json.loads(out.read_text())["runs"][0]["mean"]
    assert mean_all["fg_sad"] == pytest.approx(FG_SAD + H * 3 * _f.sum() / 1000)


def test_cli_layout_errors_are_one_line(tmp_path, capsys):
    from drip_core.eval.__main__ import main

    (tmp_path / "merged").mkdir()
    assert main(["--layout", "comp1k", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("drip-eval: error:") and "trimaps/" in err and "\n" not in err
    assert main([]) == 1
