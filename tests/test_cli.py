"""drip-matte as a user runs it: real processes, real files, one-line errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, load_alphamatting
from PIL import Image


def drip_matte(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "drip_core.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def crop(tmp_path):
    image, tri, gt = load_alphamatting("GT04")
    image, tri = image[100:400, 200:560], tri[100:400, 200:560]
    assert {0, 128, 255} <= set(np.unique(tri))
    Image.fromarray(image).save(tmp_path / "photo.png")
    Image.fromarray(tri).save(tmp_path / "trimap.png")
    return tmp_path, image, tri


def test_single_image_writes_alpha_foreground_and_rgba(crop):
    tmp, image, tri = crop
    r = drip_matte(tmp / "photo.png", "--trimap", tmp / "trimap.png", "--engine", "classical",
                   "--alpha", tmp / "a.png", "--foreground", tmp / "f.png", "--rgba", tmp / "out.png")
    assert r.returncode == 0, r.stderr
    alpha = np.asarray(Image.open(tmp / "a.png"))
    rgba = np.asarray(Image.open(tmp / "out.png"))
    assert alpha.shape == tri.shape and rgba.shape == (*tri.shape, 4)
    assert (alpha[tri == 255] == 255).all() and (alpha[tri == 0] == 0).all()
    assert (rgba[..., 3] == alpha).all()
    assert "using classical engine" in r.stderr


def test_auto_engine_reports_its_choice(crop, tmp_path):
    tmp, _, _ = crop
    r = drip_matte(tmp / "photo.png", "--trimap", tmp / "trimap.png", "--alpha", tmp / "a.png")
    assert r.returncode == 0, r.stderr
    assert "auto: classical engine (no DRIP model configured)" in r.stderr


def test_through_a_server_gives_the_same_alpha(crop, server):
    tmp, _, _ = crop
    r1 = drip_matte(tmp / "photo.png", "--trimap", tmp / "trimap.png", "--engine", "classical", "--alpha",
                    tmp / "a1.png")
    host, port = server.address
    r2 = drip_matte(tmp / "photo.png", "--trimap", tmp / "trimap.png", "--engine", "classical", "--alpha",
                    tmp / "a2.png", "--server", f"{host}:{port}", "--discovery-file", server.discovery)
    assert r1.returncode == 0 and r2.returncode == 0, r2.stderr
    a1, a2 = (np.asarray(Image.open(tmp / n), dtype=int) for n in ("a1.png", "a2.png"))
    assert np.abs(a1 - a2).max() <= 1


def test_batch_mode(tmp_path):
    inputs, trimaps = tmp_path / "in", tmp_path / "tri"
    inputs.mkdir()
    trimaps.mkdir()
    for name in ("GT05", "GT06"):
        image, tri, _ = load_alphamatting(name)
        ys, xs = np.nonzero(tri == 128)
        cy, cx = int(ys.mean()), int(xs.mean())
        window = (slice(max(cy - 100, 0), cy + 100), slice(max(cx - 100, 0), cx + 100))
        Image.fromarray(image[window]).save(inputs / f"{name}.png")
        Image.fromarray(tri[window]).save(trimaps / f"{name}.png")
    (inputs / "notes.txt").write_text("not an image, ignored by suffix")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(inputs / "orphan.png")  # no trimap: reported
    r = drip_matte("--input-dir", inputs, "--trimap-dir", trimaps, "--output-dir", tmp_path / "out",
                   "--engine", "classical")
    assert r.returncode == 1  # one image failed, the others were still written
    assert "orphan.png: no trimap" in r.stderr and "2/3 images matted" in r.stderr
    for name in ("GT05", "GT06"):
        assert (tmp_path / "out" / "alpha" / f"{name}.png").exists()
        assert (tmp_path / "out" / "foreground" / f"{name}.png").exists()


@pytest.mark.parametrize("case, expected", [
    ("missing", "no such file"),
    ("not_image", "not an image file"),
    ("mismatch", "but the image is"),
    ("no_unknown", "no unknown (grey) pixels"),
    ("no_trimap", "a trimap is needed"),
    ("tiny", "no definite foreground"),
])
def test_bad_inputs_give_one_clear_line(tmp_path, case, expected):
    img = tmp_path / "img.png"
    tri = tmp_path / "tri.png"
    Image.fromarray(np.full((20, 30, 3), 100, np.uint8)).save(img)
    t = np.zeros((20, 30), np.uint8)
    t[5:15, 5:25] = 128
    Image.fromarray(t).save(tri)
    args = [img, "--trimap", tri, "--alpha", tmp_path / "a.png", "--engine", "classical"]
    if case == "missing":
        args[0] = tmp_path / "nope.png"
    elif case == "not_image":
        (tmp_path / "fake.png").write_text("hello")
        args[0] = tmp_path / "fake.png"
    elif case == "mismatch":
        Image.fromarray(np.zeros((21, 30), np.uint8)).save(tri)
    elif case == "no_unknown":
        Image.fromarray(np.full((20, 30), 255, np.uint8)).save(tri)
    elif case == "no_trimap":
        args = [img, "--alpha", tmp_path / "a.png"]
    elif case == "tiny":
        Image.fromarray(np.full((1, 1, 3), 100, np.uint8)).save(img)
        Image.fromarray(np.full((1, 1), 128, np.uint8)).save(tri)
    r = drip_matte(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("drip-matte: ") and expected in last


def test_demo(tmp_path):
    r = drip_matte("--demo", tmp_path / "demo")
    assert r.returncode == 0, r.stderr
    for name in ("side_by_side.png", "alpha.png", "foreground.png", "cutout.png", "image.png", "trimap.png"):
        assert (tmp_path / "demo" / name).exists()
    sad = float(r.stdout.split("alpha SAD vs ground truth:")[1].split()[0])
    assert sad < 3.0  # the trimap's grey guess scores ~21: the engine really mattes


def test_a_selection_mask_becomes_the_plug_ins_trimap(crop):
    """--mask with the smart band (the default) and with a fixed band: the trimap the server builds
    for the GIMP plug-in from the same selection, here in-process."""
    from drip_core import trimaps
    from drip_core.engines import refining_engine
    from drip_core.image_io import read_rgb
    tmp, image, tri = crop
    mask = np.where(tri >= 128, 255, 0).astype(np.uint8)   # a selection of the object
    Image.fromarray(mask).save(tmp / "mask.png")
    for band in ("auto", "6"):
        r = drip_matte(tmp / "photo.png", "--mask", tmp / "mask.png", "--band-radius", band, "--engine",
                       "classical", "--alpha", tmp / f"a{band}.png")
        assert r.returncode == 0, r.stderr
        alpha = read_rgb(str(tmp / f"a{band}.png"))[..., 0]
        expected = trimaps.build("selection_band", mask, band if band == "auto" else int(band), image=image,
                                   engine=refining_engine())
        assert (alpha[expected == 255] == 255).all() and (alpha[expected == 0] == 0).all()
        assert 0 < ((alpha > 0) & (alpha < 255)).sum() <= (expected == 128).sum()
    r = drip_matte(tmp / "photo.png", "--mask", tmp / "mask.png", "--band-radius", "wide", "--alpha",
                   tmp / "x.png")
    assert r.returncode == 2 and "'wide' is not 'auto' or a whole number" in r.stderr
