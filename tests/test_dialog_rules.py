"""The dialog's GIMP-free decisions (gimp_plugin/drip_matting/dialog_rules.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gimp_plugin" / "drip_matting"))
import dialog_rules as rules  # noqa: E402

import drip_protocol as protocol  # noqa: E402


def test_the_preview_is_a_reduced_copy_never_an_enlarged_one():
    assert rules.preview_scale(800, 600) == pytest.approx(rules.PREVIEW_LONGEST / 800)
    assert rules.preview_scale(100, 80) == 1.0


def test_a_scaled_rect_covers_the_region_and_is_never_empty():
    assert rules.scaled_rect((10, 10, 100, 50), 0.5) == (5, 5, 50, 25)
    assert rules.scaled_rect((3, 3, 1, 1), 0.1) == (0, 0, 1, 1)


def test_a_preview_job_scales_the_band_and_the_edge_and_asks_for_8_bits():
    job = protocol.JobSpec(200, 100, 16, trimap_source="selection_band", band_radius=12)
    edge = protocol.EdgeSettings(shift=6, feather=4, contrast=30)
    preview = rules.preview_job(job, edge, 0.5, "black")
    assert (preview.result_depth, preview.image_format, preview.preview) == (8, "rgb8", "black")
    assert preview.band_radius == 6 and preview.edge.shift == 3 and preview.edge.feather == 2
    assert preview.edge.contrast == 30
    auto = rules.preview_job(job.replace(band_radius=protocol.AUTO_BAND), edge, 0.5, "white")
    assert auto.band_radius == protocol.AUTO_BAND


def test_edge_settings_come_from_the_procedures_values():
    values = {"edge-shift": -3, "edge-feather": 1.5, "edge-contrast": 20, "colour-cleanup": 80}
    edge = rules.edge_settings(values.get)
    assert edge == protocol.EdgeSettings(shift=-3.0, feather=1.5, contrast=20, colour_cleanup=80)


def test_without_a_model_drip_says_so_and_classical_is_plain():
    labels = dict(rules.engine_choices(False))
    assert "not installed" in labels["drip"]
    assert "closed-form" not in labels["classical"]
    assert "--drip-model" in rules.DRIP_HOWTO


def test_the_help_page_ships_with_the_plug_in():
    page = Path(rules.__file__).parent / rules.HELP_PAGE
    text = page.read_text()
    assert "Edge controls" in text and "Drip trimap" in text
