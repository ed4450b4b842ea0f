"""What keeps drip-matte's whole process fast on a large photo (issue 25): it imports only what the
job needs, reads a grey trimap as one channel, and the cheaper colour check and PNG writing give
the same answers and the same pixels as before. Real processes and real files."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from drip_core.errors import UserError
from drip_core.image_io import encode_png, read_channels, read_guide, read_rgb, write

# What a job that never runs them must not load: numeric code, the engines, the server, torch.
HEAVY_FOR_PARSING = ("numpy", "scipy", "PIL", "torch", "drip_core.engines", "drip_core.trimaps",
                     "drip_core.server", "drip_core.client", "drip_core.cluster")
NEVER_IN_A_CLASSICAL_JOB = ("torch", "diffusers", "transformers", "drip_core.engines.drip",
                            "drip_core.server", "drip_core.client", "drip_core.cluster")

REPORT_MODULES = """
import json, sys
print(json.dumps(sorted(sys.modules)))
"""


def modules_after(code: str, env: dict | None = None) -> list[str]:
    """The modules a fresh interpreter holds after running ``code`` (its last stdout line)."""
    r = subprocess.run([sys.executable, "-c", code + REPORT_MODULES], cwd=REPO, capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def loaded(modules: list[str], families) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in families)]


def test_parsing_the_command_line_loads_no_numeric_engine_or_server_code():
    modules = modules_after("import drip_core.cli as cli\n"
                            "cli.parse_args(['photo.png', '--trimap', 't.png', '--alpha', 'a.png'])\n")
    assert "drip_core.cli" in modules
    assert loaded(modules, HEAVY_FOR_PARSING) == []


def test_a_classical_job_never_loads_torch_the_drip_engine_or_the_server(tmp_path):
    from drip_core.demo_scene import make_scene
    image, trimap, _, _ = make_scene(width=160, height=120)
    Image.fromarray(image).save(tmp_path / "photo.png")
    Image.fromarray(trimap).save(tmp_path / "trimap.png")
    env = {k: v for k, v in os.environ.items() if k != "DRIP_MATTING_MODEL"}
    env["DRIP_MATTING_CONFIG"] = str(tmp_path / "no-config.json")  # auto: no DRIP model, so classical
    for engine in ("classical", "auto"):
        alpha = tmp_path / f"alpha-{engine}.png"
        argv = [str(tmp_path / "photo.png"), "--trimap", str(tmp_path / "trimap.png"), "--engine", engine,
                "--alpha", str(alpha), "--quiet"]
        modules = modules_after(f"import drip_core.cli as cli\nassert cli.main({argv!r}) == 0\n", env)
        assert Image.open(alpha).size == (160, 120)
        assert "drip_core.engines.classical.engine" in modules
        assert loaded(modules, NEVER_IN_A_CLASSICAL_JOB) == [], engine


def test_a_grey_trimap_is_read_as_one_channel_with_the_same_values(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(grey).convert("RGB").save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([grey, 255 - grey])).save(tmp_path / "grey-alpha.png")
    Image.fromarray(np.dstack([np.full_like(grey, 255), grey])).save(tmp_path / "white-alpha.png")
    assert read_channels(str(tmp_path / "grey.png")).shape == (40, 50, 1)
    assert read_channels(str(tmp_path / "grey-alpha.png")).shape == (40, 50, 2)
    assert (read_guide(str(tmp_path / "grey.png"), "trimap") == grey).all()
    assert (read_guide(str(tmp_path / "rgb.png"), "trimap") == grey).all()
    assert (read_guide(str(tmp_path / "white-alpha.png"), "mask") == grey).all()  # its alpha
    # a grey photo still reaches the engine as RGB, exactly as Pillow's own conversion gives it
    expected = np.asarray(Image.open(tmp_path / "grey.png").convert("RGB"))
    for name in ("grey.png", "grey-alpha.png"):
        rgb = read_rgb(str(tmp_path / name))
        assert rgb.shape == (40, 50, 3) and (rgb == expected).all()


@pytest.mark.parametrize("dtype, suffix, step", [(np.uint8, ".png", 1), (np.uint16, ".png", 257),
                                                 (np.float32, ".tif", 1 / 255)])
@pytest.mark.parametrize("spread, pixels, colour", [(25, 200, False), (26, 200, True),
                                                    (26, 100, False), (26, 101, True)])
def test_the_colour_check_keeps_its_limits(tmp_path, dtype, suffix, step, spread, pixels, colour):
    """A picture is colour when red, green and blue differ by over a tenth of full scale (25.5 of
    255) on over 1 % of its pixels: 25 never counts, 26 does, on 101 of 10 000 pixels, not 100."""
    grey = np.full((100, 100), 100, np.float64)
    rgb = np.dstack([grey, grey, grey])
    rgb.reshape(-1, 3)[:pixels, 0] += spread
    path = tmp_path / f"trimap{suffix}"
    write(str(path), (rgb * step).astype(dtype))
    if colour:
        with pytest.raises(UserError, match="is a colour image"):
            read_guide(str(path), "trimap")
    else:
        assert read_guide(str(path), "trimap").shape == (100, 100)


@pytest.mark.parametrize("shape", [(60, 70), (60, 70, 3), (60, 70, 4)])
def test_8_bit_pngs_are_written_losslessly(tmp_path, shape):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    pixels[10:40] = 255  # runs, as in a matte, and noise, as in a photo
    (tmp_path / "out.png").write_bytes(encode_png(pixels))
    assert (np.asarray(Image.open(tmp_path / "out.png")) == pixels).all()


@pytest.mark.parametrize("own", [None, "1"])
def test_drip_core_turns_numpy_huge_page_advice_off_unless_the_user_set_it(own):
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if own is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = own
    code = "import drip_core, numpy, os\nprint(os.environ['NUMPY_MADVISE_HUGEPAGE'])\n"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (own or "0")


def test_an_alpha_only_job_skips_the_colours_and_gives_the_same_alpha():
    from drip_core.demo_scene import make_scene
    from drip_core.engines import get_engine
    image, trimap, _, _ = make_scene(width=160, height=120)
    engine = get_engine("classical")
    full = engine.matte(image, trimap, dtype=np.uint8)
    alpha_only = engine.matte(image, trimap, dtype=np.uint8, with_foreground=False)
    assert alpha_only.foreground is None
    np.testing.assert_array_equal(alpha_only.alpha, full.alpha)
    assert full.foreground.shape == image.shape
