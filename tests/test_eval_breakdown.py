"""drip_core.eval.breakdown: the error's parts add up and land where they were made."""
import numpy as np

from drip_core.eval.breakdown import error_breakdown, with_true_foreground


def _scene():
    gt = np.zeros((40, 60), np.uint8)
    gt[:, 30:] = 255
    gt[:, 25:30] = 128                       # a mixed edge
    trimap = np.zeros_like(gt)
    trimap[:, 22:34] = 128
    trimap[:, 34:] = 255
    trimap[:5, 10:20] = 255                  # definite foreground where the truth is background
    return gt, trimap


def test_parts_add_up_and_land_where_the_error_was_made():
    gt, trimap = _scene()
    alpha = gt / 255.0
    alpha[:5, 10:20] = 1.0                   # the wrong definite foreground, as an engine keeps it
    alpha[:, 25:30] = 0.75                   # the mixed edge too opaque by ~0.25
    parts = error_breakdown(alpha, gt, trimap)
    assert np.isclose(parts["known_fg"], 50 / 1000)
    assert parts["known_bg"] == 0 and parts["unknown_bg"] == 0 and parts["unknown_fg"] == 0
    assert np.isclose(parts["known_fg"] + parts["known_bg"] + parts["unknown"], parts["sad"])
    assert np.isclose(parts["unknown_bg"] + parts["unknown_fg"] + parts["unknown_mixed"], parts["unknown"])
    over = sum(v for k, v in parts.items() if k.startswith("over_"))
    under = sum(v for k, v in parts.items() if k.startswith("under_"))
    assert np.isclose(over, parts["unknown_mixed"]) and under == 0
    # the edge is 4-8 px from definite background (columns 0-21)
    assert np.isclose(parts["over_0_10"], over)


def test_the_oracle_unsets_only_the_wrong_foreground():
    gt, trimap = _scene()
    fixed = with_true_foreground(trimap, gt)
    assert (fixed[:5, 10:20] == 128).all()
    assert (fixed[:, 34:] == 255).all() and (fixed[:, :10] == 0).all()
    assert (trimap[:5, 10:20] == 255).all()  # the input is left as it was
