"""User configuration: where the DRIP model lives, and per-user folders.

Order of precedence: explicit argument > environment variable > config file.
"""
from __future__ import annotations

import json
import os
import sys

from .protocol import APP_DIR_NAME

MODEL_ENV = "DRIP_MATTING_MODEL"
CONFIG_ENV = "DRIP_MATTING_CONFIG"


def config_dir() -> str:
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Roaming")
    elif sys.platform == "darwin":
        base = os.path.join(os.path.expanduser("~"), "Library", "Application Support")
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, APP_DIR_NAME)


def data_dir() -> str:
    """Per-user data (virtual environment, models)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
    elif sys.platform == "darwin":
        base = os.path.join(os.path.expanduser("~"), "Library", "Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, APP_DIR_NAME)


def config_file() -> str:
    return os.environ.get(CONFIG_ENV) or os.path.join(config_dir(), "config.json")


def load_config() -> dict:
    try:
        with open(config_file(), "r", encoding="utf-8") as f:
            cfg = json.load(f)
        return cfg if isinstance(cfg, dict) else {}
    except (OSError, ValueError):
        return {}


def configured_drip_model() -> str | None:
    """The DRIP model folder the user configured, if any (not checked here)."""
    value = os.environ.get(MODEL_ENV) or load_config().get("drip_model")
    return value or None
