"""The drip engine behind a real server process, driven by the real client."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from conftest import ALPHAMATTING, ServerProcess


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from drip_core.engines.drip.model.convert import convert_sd2
    from drip_core.engines.drip.testing import TINY_DECODER_CONFIG, make_tiny_sd2

    base = tmp_path_factory.mktemp("drip_server")
    convert_sd2(make_tiny_sd2(str(base / "sd2")), str(base / "model"), decoder_config=TINY_DECODER_CONFIG)
    return str(base / "model")  # untrained: "trained": false


def _photo():
    if not ALPHAMATTING.is_dir():
        pytest.skip(f"the alphamatting data is not at {ALPHAMATTING} (../shared absent)")
    from PIL import Image
    image = np.asarray(Image.open(ALPHAMATTING / "input_training_lowres" / "GT04.png").convert("RGB"))
    tri = Image.open(ALPHAMATTING / "trimap_training_lowres" / "Trimap1" / "GT04.png").convert("L")
    tri = np.asarray(tri)
    tri = np.where(tri < 64, 0, np.where(tri > 191, 255, 128)).astype(np.uint8)
    return np.ascontiguousarray(image[256:384, 160:288]), np.ascontiguousarray(tri[256:384, 160:288])


def _server(folder: Path, model: str, env: dict) -> ServerProcess:
    env = {"DRIP_MATTING_ALLOW_UNTRAINED": None, **env}  # the test decides, not the caller's shell
    return ServerProcess(folder, "--engine", "auto", "--drip-model", model, env=env)


def test_drip_engine_through_server_and_client(tiny_model, tmp_path):
    from drip_core.client import connect
    from drip_protocol import Stage

    image, tri = _photo()
    env = {"DRIP_MATTING_ALLOW_UNTRAINED": "1", "DRIP_MATTING_VERIFY": "cached"}
    server = _server(tmp_path, tiny_model, env)
    try:
        events = []
        with connect(discovery_file=str(server.discovery), spawn=False) as client:
            fg, alpha, info = client.matte(image, tri, engine="drip", return_info=True,
                                           progress=lambda f, s, m="": events.append((s, m)))
        assert info["engine"] == "drip"
        assert fg.shape == image.shape and alpha.shape == tri.shape and alpha.dtype == np.uint8
        assert (alpha[tri == 0] == 0).all() and (alpha[tri == 255] == 255).all()
        assert any(s == Stage.DENOISING and m.startswith("step ") for s, m in events), events
    finally:
        server.stop()


def test_untrained_model_is_refused_and_auto_falls_back(tiny_model, tmp_path):
    from drip_core.client import connect
    from drip_protocol import ProtocolError

    image, tri = _photo()
    server = _server(tmp_path, tiny_model, {})
    try:
        with connect(discovery_file=str(server.discovery), spawn=False) as client:
            _, alpha, info = client.matte(image, tri, engine="auto", return_info=True)
            assert info["engine"] == "classical" and "DRIP unusable" in info["note"]
            with pytest.raises(ProtocolError) as e:
                client.matte(image, tri, engine="drip")
        assert e.value.code == "model_corrupt" and "untrained" in e.value.message
    finally:
        server.stop()
