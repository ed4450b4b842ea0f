"""Which torch build to install: CUDA when an NVIDIA GPU is found, the default (MPS) build
on macOS, the CPU build otherwise; plus rough disk-space needs for the window.

The CUDA and CPU builds come from download.pytorch.org (the CPU wheel is ~200 MB instead of
the ~2.5 GB CUDA one PyPI serves on Linux). Standard library only.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

TORCH_CHOICES = ("auto", "cpu", "cuda", "skip")
PYTORCH_INDEX = "https://download.pytorch.org/whl"
# (minimum CUDA version the driver supports, wheel index tag), newest first.
CUDA_TAGS = ((12, 8, "cu128"), (12, 6, "cu126"), (11, 8, "cu118"))
DEFAULT_CUDA_TAG = "cu126"

# Rough sizes in MB of what lands in the venv / model folder, for the "disk space" line.
SIZE_MB = {"base": 350, "drip_extras": 900, "cpu": 900, "cuda": 6500, "mps": 900, "model": 5500}


@dataclass(frozen=True)
class Gpu:
    name: str
    driver_cuda: tuple[int, int] | None


@dataclass(frozen=True)
class TorchPlan:
    build: str                 # "cpu", "cuda", "mps" (macOS default wheel) or "skip"
    index_url: str | None      # None = the default index (PyPI)
    reason: str                # why this build, for the plan and the window

    def pip_args(self) -> list[str]:
        if self.build == "skip":
            return []
        args = ["torch"]
        if self.index_url:
            args += ["--index-url", self.index_url]
        return args


def detect_nvidia(runner=subprocess.run) -> list[Gpu]:
    """NVIDIA GPUs that nvidia-smi reports (empty without a driver)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = runner([exe], capture_output=True, text=True, timeout=15)
        names = runner([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                       timeout=15)
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0 or names.returncode != 0:
        return []
    m = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", out.stdout or "")
    cuda = (int(m.group(1)), int(m.group(2))) if m else None
    return [Gpu(line.strip(), cuda) for line in (names.stdout or "").splitlines() if line.strip()]


def cuda_tag(driver_cuda: tuple[int, int] | None) -> str:
    if driver_cuda is None:
        return DEFAULT_CUDA_TAG
    for major, minor, tag in CUDA_TAGS:
        if driver_cuda >= (major, minor):
            return tag
    return CUDA_TAGS[-1][2]


def choose_torch(requested: str = "auto", engine: str = "auto", platform: str | None = None,
                 gpus: list[Gpu] | None = None) -> TorchPlan:
    platform = platform or sys.platform
    if requested not in TORCH_CHOICES:
        raise ValueError(f"--torch must be one of {', '.join(TORCH_CHOICES)}, not {requested!r}")
    if engine == "classical":
        return TorchPlan("skip", None, "classical engine only: torch is not needed")
    if requested == "skip":
        return TorchPlan("skip", None, "--torch skip: torch is not installed (install it yourself for DRIP)")
    if requested == "auto":
        if platform == "darwin":
            return TorchPlan("mps", None, "macOS: the default torch build (Apple GPU through MPS)")
        gpus = detect_nvidia() if gpus is None else gpus
        if gpus:
            tag = cuda_tag(gpus[0].driver_cuda)
            return TorchPlan("cuda", f"{PYTORCH_INDEX}/{tag}",
                             f"NVIDIA GPU found ({gpus[0].name}): CUDA build {tag}")
        return TorchPlan("cpu", f"{PYTORCH_INDEX}/cpu", "no NVIDIA GPU found: CPU build (DRIP will be slow)")
    if requested == "cuda":
        if platform == "darwin":
            raise ValueError("--torch cuda: there is no CUDA build of torch for macOS; "
                             "use --torch auto (MPS)")
        gpus = detect_nvidia() if gpus is None else gpus
        tag = cuda_tag(gpus[0].driver_cuda if gpus else None)
        return TorchPlan("cuda", f"{PYTORCH_INDEX}/{tag}", f"--torch cuda: CUDA build {tag}")
    if platform == "darwin":
        return TorchPlan("cpu", None, "--torch cpu on macOS: the default build")
    return TorchPlan("cpu", f"{PYTORCH_INDEX}/cpu", "--torch cpu: CPU build")


def disk_needed_mb(torch: TorchPlan, engine: str, with_model: bool) -> int:
    total = SIZE_MB["base"]
    if engine != "classical" and torch.build != "skip":
        total += SIZE_MB["drip_extras"] + SIZE_MB[torch.build]
    if with_model:
        total += SIZE_MB["model"]
    return total
