"""drip-matte's input checks and messages (issue 25): each message names the real cause and the
fix, once. Real `drip-matte` processes on small synthetic images."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

H, W = 40, 60


def drip_matte(*args, env_extra=None, timeout=300):
    env = dict(os.environ)
    env.pop("DRIP_MATTING_MODEL", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "drip_core.cli", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def error_line(r) -> str:
    """The one error line; it must say each sentence once."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("drip-matte: ")
    sentences = [re.sub(r"\W+", " ", s).strip().lower() for s in re.split(r"(?<=\.)\s+", line[12:])]
    assert len(sentences) == len(set(sentences)), line
    return line


@pytest.fixture
def files(tmp_path):
    """A noisy photo, a trimap with a grey band between black and white, its selection mask."""
    rng = np.random.default_rng(0)
    image = (rng.random((H, W, 3)) * 255).astype(np.uint8)
    tri = np.zeros((H, W), np.uint8)
    tri[8:32, 12:48] = 128
    tri[14:26, 20:40] = 255
    mask = np.where(tri >= 128, 255, 0).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    Image.fromarray(tri).save(tmp_path / "trimap.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path, image, tri, mask


def no_config(tmp_path) -> dict:
    return {"DRIP_MATTING_CONFIG": str(tmp_path / "no-config.json")}


# --- 1. every sentence once, no hint that contradicts the message ------------------------------

def test_no_drip_model_is_said_once_with_the_command_line_fix(files):
    tmp = files[0]
    line = error_line(drip_matte(tmp / "photo.png", "--trimap", tmp / "trimap.png", "--engine", "drip",
                                 "--alpha", tmp / "a.png", env_extra=no_config(tmp)))
    assert line.lower().count("no drip model is configured") == 1, line
    assert "--drip-model" in line and "--engine classical" in line


def test_a_missing_model_folder_is_not_called_unconfigured(files):
    tmp = files[0]
    line = error_line(drip_matte(tmp / "photo.png", "--trimap", tmp / "trimap.png", "--engine", "drip",
                                 "--drip-model", tmp / "missing-folder", "--alpha", tmp / "a.png",
                                 env_extra=no_config(tmp)))
    assert f"the DRIP model folder {tmp / 'missing-folder'} does not exist" in line
    assert "configured" not in line.lower(), line


def test_an_all_black_mask_selects_nothing(files):
    tmp = files[0]
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp / "black.png")
    line = error_line(drip_matte(tmp / "photo.png", "--mask", tmp / "black.png", "--alpha", tmp / "a.png",
                                 "--engine", "classical"))
    assert f"the mask {tmp / 'black.png'} selects nothing" in line
    assert "Nothing is selected" not in line and "trimap channel" not in line, line


@pytest.mark.parametrize("kind, value, said, not_said", [
    ("mask", 0, "selects nothing", ["Nothing is selected", "trimap channel"]),
    ("trimap", 255, "has no unknown (grey) pixels", ["no grey (unknown)", "widen the band"]),
])
def test_core_errors_in_a_batch_are_said_once(files, kind, value, said, not_said):
    """Batch reads its guides as a single photo's (drip_core/guides.py): the same cause, said once."""
    tmp = files[0]
    (tmp / "in").mkdir()
    (tmp / "guides").mkdir()
    Image.fromarray(files[1]).save(tmp / "in" / "p.png")
    Image.fromarray(np.full((H, W), value, np.uint8)).save(tmp / "guides" / "p.png")
    r = drip_matte("--input-dir", tmp / "in", f"--{kind}-dir", tmp / "guides", "--output-dir", tmp / "out",
                   "--engine", "classical")
    assert r.returncode == 1, r.stderr
    line = next(t for t in r.stderr.splitlines() if "p.png" in t)
    assert said in line and not any(s in line for s in not_said), line


def test_a_trimap_without_grey_is_said_once_without_band_advice(files):
    tmp = files[0]
    Image.fromarray(np.full((H, W), 255, np.uint8)).save(tmp / "white.png")
    line = error_line(drip_matte(tmp / "photo.png", "--trimap", tmp / "white.png", "--alpha", tmp / "a.png",
                                 "--engine", "classical"))
    assert line.lower().count("no unknown (grey)") + line.lower().count("no grey (unknown)") == 1, line
    assert "widen the band" not in line, line


def test_a_server_address_without_a_token_is_not_a_wrong_token(files):
    tmp = files[0]
    line = error_line(drip_matte(tmp / "photo.png", "--trimap", tmp / "trimap.png", "--alpha", tmp / "a.png",
                                 "--server", "127.0.0.1:1", "--discovery-file", tmp / "none.json"))
    assert "no token known for 127.0.0.1:1" in line and "--token" in line
    assert "did not match" not in line, line


def test_a_server_address_where_nothing_answers(files):
    tmp = files[0]
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = error_line(drip_matte(tmp / "photo.png", "--trimap", tmp / "trimap.png", "--alpha", tmp / "a.png",
                                 "--server", f"127.0.0.1:{port}", "--token", "x",
                                 "--discovery-file", tmp / "none.json"))
    assert f"no Drip server answers at 127.0.0.1:{port}" in line
    assert "none could be started" not in line and "installer" not in line, line


# --- 2. the real cause ----------------------------------------------------------------------------

def test_trimap_and_mask_together_say_both_were_given(files):
    tmp = files[0]
    line = error_line(drip_matte(tmp / "photo.png", "--trimap", tmp / "trimap.png", "--mask",
                                 tmp / "mask.png", "--alpha", tmp / "a.png"))
    assert "both --trimap and --mask" in line and "drop" in line, line
    assert "is needed" not in line, line


def test_an_all_white_mask_selects_everything(files):
    tmp = files[0]
    Image.fromarray(np.full((H, W), 255, np.uint8)).save(tmp / "white.png")
    line = error_line(drip_matte(tmp / "photo.png", "--mask", tmp / "white.png", "--alpha", tmp / "a.png",
                                 "--engine", "classical"))
    assert "selects the whole image" in line and "no edge" in line, line
    assert "widen" not in line and "unknown" not in line, line


def test_a_white_rgba_mask_uses_its_alpha_as_the_selection(files):
    tmp, _, _, mask = files
    rgba = np.dstack([np.full((H, W, 3), 255, np.uint8), mask])
    Image.fromarray(rgba).save(tmp / "rgba.png")
    for name in ("mask.png", "rgba.png"):
        r = drip_matte(tmp / "photo.png", "--mask", tmp / name, "--band-radius", "4", "--engine", "classical",
                       "--alpha", tmp / f"a-{name}")
        assert r.returncode == 0, r.stderr
    a, b = (np.asarray(Image.open(tmp / f"a-{n}")) for n in ("mask.png", "rgba.png"))
    assert (a == b).all()


# --- 3. nothing silently accepted -------------------------------------------------------------------

def test_a_jpeg_trimap_is_snapped_with_a_warning(files):
    tmp, _, tri, _ = files
    Image.fromarray(tri).save(tmp / "trimap.jpg", quality=70)
    noisy = np.asarray(Image.open(tmp / "trimap.jpg"))
    assert not np.isin(noisy, (0, 128, 255)).all()  # the compression really changed values
    r_png = drip_matte(tmp / "photo.png", "--trimap", tmp / "trimap.png", "--engine", "classical",
                       "--alpha", tmp / "a-png.png")
    r_jpg = drip_matte(tmp / "photo.png", "--trimap", tmp / "trimap.jpg", "--engine", "classical",
                       "--alpha", tmp / "a-jpg.png")
    assert r_png.returncode == 0 and r_jpg.returncode == 0, r_jpg.stderr
    assert "warning" in r_jpg.stderr and "JPEG" in r_jpg.stderr and "nearest" in r_jpg.stderr
    assert "warning" not in r_png.stderr
    # compression noise turned no pixel unsure: the matte is the clean trimap's
    a, b = (np.asarray(Image.open(tmp / n)) for n in ("a-png.png", "a-jpg.png"))
    assert (a == b).all()


def test_help_documents_the_jpeg_trimap_rule():
    r = drip_matte("--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "JPEG" in text and "nearest" in text


@pytest.mark.parametrize("flag", ["--mask", "--trimap"])
def test_a_colour_photo_as_mask_or_trimap_is_refused(files, flag):
    tmp = files[0]
    line = error_line(drip_matte(tmp / "photo.png", flag, tmp / "photo.png", "--alpha", tmp / "a.png",
                                 "--engine", "classical"))
    assert "is a colour image" in line, line
    assert not (tmp / "a.png").exists()


@pytest.mark.parametrize("flag, name, reason", [
    ("--rgba", "out.jpg", "no alpha channel"),
    ("--alpha", "a.jpeg", "lossy"),
    ("--foreground", "f.bmp", "writes PNG or TIFF"),
])
def test_an_output_format_that_cannot_hold_the_result_is_refused_before_any_work(files, flag, name, reason):
    tmp = files[0]
    r = drip_matte(tmp / "photo.png", "--trimap", tmp / "trimap.png", flag, tmp / name,
                   "--engine", "classical")
    line = error_line(r)
    assert name in line and reason in line and ".png" in line and ".tif" in line, line
    assert "using" not in r.stderr  # refused before the engine ran
    assert not (tmp / name).exists()
