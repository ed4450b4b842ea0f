"""Batch (--trimap-dir / --mask-dir, locally or on Ray) reads each guide as drip-matte reads a
single photo's --trimap / --mask: the same checks, the same trimap, the same words."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from drip_core import cli
from drip_core.cluster import jobs as batch
from drip_core.errors import UserError, command_line_text

H, W = 40, 48


@pytest.fixture
def scene(tmp_path):
    rng = np.random.default_rng(3)
    image = (rng.random((H, W, 3)) * 255).astype(np.uint8)
    for sub in ("in", "guide"):
        (tmp_path / sub).mkdir()
    Image.fromarray(image).save(tmp_path / "in" / "a.png")
    return tmp_path, image


def selection():
    sel = np.zeros((H, W), np.uint8)
    sel[10:30, 12:36] = 255
    return sel


def job(root, kind, guide_name="a.png", band=4):
    return batch.Job("a.png", str(root / "in" / "a.png"), str(root / "guide" / guide_name), kind, band,
                     str(root / "out"))


def test_jpeg_trimap_is_snapped_with_the_cli_warning(scene, capsys):
    root, image = scene
    tri = np.zeros((H, W), np.uint8)
    tri[8:32, 8:40] = 128
    tri[14:26, 16:32] = 255
    path = root / "guide" / "a.png"   # a JPEG by its content, whatever its name
    Image.fromarray(tri).save(path, format="JPEG", quality=70)
    expected = cli.read_trimap(str(path), image.shape)
    cli_warning = capsys.readouterr().err.strip()
    assert "is a JPEG" in cli_warning
    lines = []
    _, trimap = batch.load_inputs(job(root, "trimap"), lines.append)
    np.testing.assert_array_equal(trimap, expected)
    assert set(np.unique(trimap)) <= {0, 128, 255}
    assert [f"drip-matte: warning: {line}" for line in lines] == [cli_warning]
    result = batch.run_job(job(root, "trimap"))
    assert result["status"] == "done" and result["warnings"] == lines
    assert capsys.readouterr().err.strip() == cli_warning  # printed too (a Ray worker's stderr)


def test_rgba_mask_uses_its_alpha_as_the_selection(scene):
    root, image = scene
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = 255            # a white layer: the selection is in its alpha
    rgba[..., 3] = selection()
    path = root / "guide" / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    expected = cli.read_mask_as_trimap(str(path), image, 4)
    _, trimap = batch.load_inputs(job(root, "mask"))
    np.testing.assert_array_equal(trimap, expected)
    assert (trimap == 255).any() and (trimap == 0).any()


@pytest.mark.parametrize("kind", ["mask", "trimap"])
def test_colour_picture_as_guide_is_refused_in_the_cli_words(scene, kind):
    root, image = scene
    path = root / "guide" / "a.png"
    Image.fromarray(image).save(path)     # the photo itself, given as the guide
    with pytest.raises(UserError) as said:
        if kind == "mask":
            cli.read_mask_as_trimap(str(path), image, 4)
        else:
            cli.read_trimap(str(path), image.shape)
    result = batch.run_job(job(root, kind))
    assert result["status"] == "failed" and result["code"] == "bad_trimap"
    assert result["message"] == command_line_text(said.value) and "colour image" in result["message"]


@pytest.mark.parametrize("guide, kind, code", [
    (np.zeros((H, W), np.uint8), "mask", "empty_selection"),
    (np.full((H, W), 255, np.uint8), "mask", "no_unknown"),
    (np.where(selection() > 0, 255, 0).astype(np.uint8), "trimap", "no_unknown"),
    (np.zeros((H // 2, W), np.uint8), "trimap", "bad_trimap"),
])
def test_refusals_have_the_cli_message_and_a_code(scene, guide, kind, code):
    root, image = scene
    path = root / "guide" / "a.png"
    Image.fromarray(guide).save(path)
    with pytest.raises(UserError) as said:
        if kind == "mask":
            cli.read_mask_as_trimap(str(path), image, 4)
        else:
            cli.read_trimap(str(path), image.shape)
    result = batch.run_job(job(root, kind))
    assert (result["code"], result["message"]) == (code, command_line_text(said.value))


def test_local_batch_through_drip_matte(scene, capsys):
    """The whole local batch: a colour 'mask' fails with the CLI's words, an RGBA one is matted."""
    root, image = scene
    Image.fromarray(image).save(root / "in" / "b.png")
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 255, selection()
    Image.fromarray(rgba, "RGBA").save(root / "guide" / "a.png")
    Image.fromarray(image).save(root / "guide" / "b.png")
    code = cli.main(["--input-dir", str(root / "in"), "--mask-dir", str(root / "guide"), "--band-radius", "4",
                     "--output-dir", str(root / "out"), "--engine", "classical", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "b.png: the mask" in err and "is a colour image" in err
    assert sorted(p.name for p in (root / "out" / "alpha").iterdir()) == ["a.png"]
