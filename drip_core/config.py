"""User configuration: where the DRIP model lives, and per-user folders.

Order of precedence: explicit argument > environment variable > config file.
"""
from __future__ import annotations

import json
import os

from drip_protocol import user_dir

from .settings import settings


def config_dir() -> str:
    return user_dir("config")


def data_dir() -> str:
    """Per-user data (virtual environment, models)."""
    return user_dir("data")


def config_file() -> str:
    return settings().config_file or os.path.join(config_dir(), "config.json")


def load_config() -> dict:
    try:
        with open(config_file(), "r", encoding="utf-8") as f:
            cfg = json.load(f)
        return cfg if isinstance(cfg, dict) else {}
    except (OSError, ValueError):
        return {}


def configured_drip_model() -> str | None:
    """The DRIP model folder the user configured, if any (not checked here)."""
    value = settings().drip_model or load_config().get("drip_model")
    return value or None
