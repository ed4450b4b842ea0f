"""The refine loop's decisions (gimp_plugin/drip_matting/loop_rules.py), on the host: which trimap a
repeated run uses, which region it sends, which colour shows the trimap. In real GIMP:
tests/gimp/test_gimp_e2e.py (workflow_loop) and tests/gimp/test_gimp_gui.py (loop_undo)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gimp_plugin" / "drip_matting"))

import loop_rules as loop  # noqa: E402


def choose(asked="selection-band", painted=False, new_selection=False, has_trimap=True, saved=True):
    return loop.choose_trimap_source(asked, painted=painted, new_selection=new_selection,
                                     has_trimap=has_trimap, has_saved_selection=saved)


@pytest.mark.parametrize("asked", ["selection-band", "feathered-selection", "trimap-channel"])
def test_paint_since_the_last_run_means_the_painted_trimap(asked):
    assert choose(asked, painted=True) == ("trimap-channel", False)


def test_a_new_selection_is_followed_never_the_stale_trimap():
    # the trap: "Trimap from" still said the channel, and the old trimap ran silently
    assert choose("trimap-channel", new_selection=True) == ("selection-band", False)
    assert choose("feathered-selection", new_selection=True) == ("feathered-selection", False)


def test_both_changed_is_said():
    assert choose("selection-band", painted=True, new_selection=True) == ("trimap-channel", True)


def test_nothing_changed_repeats_the_last_choice():
    # another band setting from the same (saved) selection
    assert choose("selection-band") == ("selection-band", False)
    # after a painted run: the trimap again (the server answers at once: nothing changed)
    assert choose("trimap-channel") == ("trimap-channel", False)
    # a selection source with no saved selection: the trimap
    assert choose("selection-band", saved=False) == ("trimap-channel", False)
    # a first run: the selection (its emptiness is the run's own message)
    assert choose("trimap-channel", has_trimap=False, saved=False) == ("selection-band", False)


def test_the_region_stays_the_one_the_result_holds():
    held = (10, 20, 300, 200)
    assert loop.stable_region((50, 60, 100, 80), held) == held
    assert loop.stable_region((0, 60, 100, 80), held) == (0, 60, 100, 80), "outside it: its own region"
    assert loop.stable_region((50, 60, 100, 80), None) == (50, 60, 100, 80)
    assert loop.stable_region(held, held) == held


def test_the_overlay_colour_reads_against_the_object():
    purple = [(0.6, 0.1, 0.7)] * 500 + [(0.9, 0.9, 0.9)] * 10
    assert loop.overlay_colour(purple) != (1.0, 0.0, 1.0), "magenta over purple is hard to read"
    green = [(0.1, 0.8, 0.1)] * 500
    assert loop.overlay_colour(green) == (1.0, 0.0, 1.0), "magenta is the default where it reads"


def test_rgb_samples_take_every_depth():
    values = [255, 0, 0] * 64 * 64
    samples = loop.rgb_samples(values, 64, 64)
    assert len(samples) == 64 * 64 and samples[0] == (1.0, 0.0, 0.0)
    assert loop.rgb_samples([65535, 0, 0] * 4, 2, 2, scale=65535.0)[0] == (1.0, 0.0, 0.0)
    assert len(loop.rgb_samples([0.5] * 3 * 1000 * 1000, 1000, 1000)) <= 4096 * 1.1


def test_a_fingerprint_tells_any_change():
    a = bytes(1000)
    b = bytearray(a)
    b[999] = 1
    assert loop.fingerprint(a) == loop.fingerprint(bytes(1000))
    assert loop.fingerprint(a) != loop.fingerprint(bytes(b))
    assert " " not in loop.fingerprint(a), "the parasite holds two prints separated by a space"
