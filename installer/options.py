"""What the user chose (Options) and the defaults for what they left out: where the
environment, the models and the downloads go, and what gets pip-installed.

Standard library only.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from drip_core import config as drip_config

from .plan import InstallError

ROOT = Path(__file__).resolve().parent.parent   # the source tree, or the unpacked bundle
ENGINES = ("auto", "drip", "classical")
# What an install puts in place: "auto" is not one of them, it is resolved by choose_engine.
ENGINE_SETS = {"classical": "the classical engine only (no torch)",
               "drip": "DRIP and the classical engine (torch)"}
ADD_DRIP_LATER = "--drip-model FOLDER"


@dataclass
class Options:
    venv: str | None = None
    python: str = sys.executable
    torch: str = "auto"
    engine: str = "auto"
    gimp_profiles: list[str] = field(default_factory=list)
    drip_model: str | None = None
    model_mode: str = "copy"            # copy | link (use the folder where it is)
    download_model: bool = False
    model_url: str | None = None
    model_sha256: str | None = None
    source: str | None = None           # wheel or source tree (default_source())
    pip_args: list[str] = field(default_factory=list)
    system_site_packages: bool = False
    upgrade: bool = False
    purge: bool = False
    gpus: list | None = None            # detected NVIDIA GPUs (None = detect)


def check_options(options: Options) -> None:
    if options.engine not in ENGINES:
        raise InstallError(f"--engine must be one of {', '.join(ENGINES)}, not {options.engine!r}")
    if options.model_mode not in ("copy", "link"):
        raise InstallError(f"--model-mode must be copy or link, not {options.model_mode!r}")
    wants_model = options.download_model or options.model_url
    if options.drip_model and wants_model:
        raise InstallError("choose one: --drip-model PATH (a folder you have) or --download-model")
    if options.drip_model and not Path(options.drip_model).expanduser().is_dir():
        raise InstallError(f"--drip-model {options.drip_model}: no such folder. Name the DRIP model folder "
                           "(the one holding drip.json) that drip-convert or drip-train wrote.")
    if options.engine == "classical" and (options.drip_model or wants_model):
        raise InstallError("--engine classical installs no DRIP engine, so a DRIP model is of no use: "
                           "drop --drip-model/--download-model or use --engine auto")


@dataclass(frozen=True)
class EngineChoice:
    engine: str                 # a key of ENGINE_SETS
    reason: str                 # why, for the plan and the window
    kept: bool = False          # the last install's choice, not one made now


def model_given(options: Options) -> bool:
    return bool(options.drip_model or options.download_model or options.model_url)


def remembered_engine(record: dict) -> str | None:
    """The engine set the last install (finished or not) chose, from its manifest."""
    if record.get("engine") in ENGINE_SETS:
        return record["engine"]
    venv = record.get("venv") or {}
    # manifests written before the choice was remembered: their "auto" meant DRIP, but only
    # counts where torch or the drip extra really went in
    if venv.get("engine") == "classical":
        return "classical"
    if venv.get("engine") in ("auto", "drip") and (venv.get("torch") or venv.get("extras")):
        return "drip"
    return None


def choose_engine(options: Options, record: dict) -> EngineChoice:
    """Classical unless DRIP is asked for (--engine drip, a model, --torch cpu|cuda) or the last
    install chose it: torch is gigabytes, and no DRIP weights are published to use it with."""
    if options.engine in ENGINE_SETS:
        return EngineChoice(options.engine, f"--engine {options.engine}")
    if options.drip_model:
        return EngineChoice("drip", "a DRIP model is imported (--drip-model)")
    if model_given(options):
        return EngineChoice("drip", "a DRIP model is downloaded")
    if options.torch in ("cpu", "cuda"):
        return EngineChoice("drip", f"--torch {options.torch} asks for DRIP")
    last = remembered_engine(record)
    if last:
        other = "--engine classical" if last == "drip" else f"--engine drip or {ADD_DRIP_LATER}"
        return EngineChoice(last, f"kept from the last install ({other} changes it)", kept=True)
    return EngineChoice("classical", f"no DRIP model given; to add DRIP later, run the installer again "
                                     f"with {ADD_DRIP_LATER}")


def version() -> str:
    try:
        from drip_core import __version__
        return __version__
    except ImportError:  # pragma: no cover
        return "0"


def default_venv() -> Path:
    return Path(drip_config.data_dir()) / "venv"


def models_dir() -> Path:
    return Path(drip_config.data_dir()) / "models"


def downloads_dir() -> Path:
    return Path(drip_config.data_dir()) / "downloads"


def default_source() -> Path:
    """What to pip-install: the wheel shipped in a bundle (wheels/), else this source tree."""
    wheels = sorted((ROOT / "wheels").glob("drip_matting-*.whl"))
    if wheels:
        return wheels[-1]
    if (ROOT / "pyproject.toml").is_file():
        return ROOT
    raise InstallError(f"found neither a wheel in {ROOT / 'wheels'} nor a source tree at {ROOT}: "
                       "this copy of the installer is incomplete; download the bundle again")
