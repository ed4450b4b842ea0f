"""Shared fixtures: paths to ../shared data and a real drip-server process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ALPHAMATTING = SHARED / "data" / "alphamatting_lowres"


def need_alphamatting() -> Path:
    if not ALPHAMATTING.is_dir():
        pytest.skip(f"the alphamatting data set is not at {ALPHAMATTING} (../shared absent)")
    return ALPHAMATTING


def load_alphamatting(name: str = "GT01", trimap: str = "Trimap1"):
    """(image uint8 HxWx3, trimap uint8 HxW, gt alpha uint8 HxW) for one photo."""
    from PIL import Image
    root = need_alphamatting()
    image = np.asarray(Image.open(root / "input_training_lowres" / f"{name}.png").convert("RGB"))
    tri = np.asarray(Image.open(root / "trimap_training_lowres" / trimap / f"{name}.png").convert("L"))
    gt = np.asarray(Image.open(root / "gt_training_lowres" / f"{name}.png").convert("L"))
    return image, tri, gt


class ServerProcess:
    """A real `python -m drip_core.server` in its own process, on loopback."""

    def __init__(self, tmp: Path, *args: str, env: dict | None = None):
        self.discovery = tmp / "server.json"
        self.log = tmp / "server.log"
        cmd = [sys.executable, "-m", "drip_core.server", "--discovery-file", str(self.discovery),
               "--log-file", str(self.log), *args]
        full_env = dict(os.environ)
        for key, value in (env or {}).items():  # None removes a variable
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=full_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not self.discovery.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        self.record = json.loads(self.discovery.read_text())

    @property
    def address(self):
        return self.record["host"], self.record["port"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(tmp_path):
    s = ServerProcess(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def server_factory(tmp_path):
    started = []

    def make(*args, sub="srv", env=None):
        folder = tmp_path / f"{sub}{len(started)}"
        folder.mkdir()
        s = ServerProcess(folder, *args, env=env)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()
