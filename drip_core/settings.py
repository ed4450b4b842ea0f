"""Every ``DRIP_MATTING_*`` environment variable of the server side, read in one place into
one typed object (docs/settings.md has the same table, with the client-side variables that
the stdlib-only plug-in and protocol package read themselves).

| variable                          | field            | type | default  | what                                        |
|-----------------------------------|------------------|------|----------|---------------------------------------------|
| DRIP_MATTING_MODEL                | drip_model       | path | config   | DRIP model folder (else the config file's)  |
| DRIP_MATTING_CONFIG               | config_file      | path | per-user | the config file (drip_model, ...)           |
| DRIP_MATTING_VERIFY               | verify           | str  | cached   | model hashes: cached, full or off           |
| DRIP_MATTING_ALLOW_UNTRAINED      | allow_untrained  | bool | no       | accept a converted-only model (tests/bench) |
| DRIP_MATTING_STEPS                | steps            | int  | 10 / 4   | denoising steps (GPU / CPU default)         |
| DRIP_MATTING_SAMPLES              | samples          | int  | 1        | noise draws averaged per region             |
| DRIP_MATTING_MAX_SIDE             | max_side         | int  | 1024/512 | native-size limit before tiling (>= 64)     |
| DRIP_MATTING_COMPILE              | compile          | bool | no       | background torch.compile of the U-Net       |
| DRIP_MATTING_COMPILE_MODE         | compile_mode     | str  | torch's  | torch.compile mode                          |
| DRIP_MATTING_BUCKET               | bucket           | int  | 0 (off)  | pad regions to multiples of this (px)       |
| DRIP_MATTING_TILED_VAE            | tiled_vae        | bool | no       | tiled VAE encode/decode (bounded memory)    |
| DRIP_MATTING_VAE_TILE             | vae_tile         | int  | VAE's    | VAE tile size (px, >= 8)                    |
| DRIP_MATTING_TEST_FAULTS          | test_faults      | bool | no       | jobs may inject faults (reliability tests)  |
| DRIP_MATTING_CACHE_MB             | cache_mb         | int  | 512      | server's image cache, MB (0 = off)          |

Booleans are 1/true/yes/on. A malformed value is an error that names the variable.
"""  # noqa: E501 - the table above is kept one row a line, as in docs/settings.md
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Mapping

from .errors import EngineError

PREFIX = "DRIP_MATTING_"
TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    drip_model: str | None = None
    config_file: str | None = None
    verify: str | None = None
    allow_untrained: bool = False
    steps: int | None = None
    samples: int | None = None
    max_side: int | None = None
    compile: bool = False
    compile_mode: str | None = None
    bucket: int | None = None
    tiled_vae: bool = False
    vae_tile: int | None = None
    test_faults: bool = False
    cache_mb: int = 512  # the server's image cache (server/job_cache.py); drip-server --cache-mb overrides it

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = env_name(f.name)
            raw = env.get(name, "").strip()
            if not raw:
                continue
            values[f.name] = _parse(name, raw, f.type, _MINIMUM.get(f.name, 1))
        return cls(**values)


# Variable names that do not follow PREFIX + FIELD in upper case.
_NAMES = {"drip_model": "MODEL", "config_file": "CONFIG"}
_MINIMUM = {"max_side": 64, "bucket": 0, "vae_tile": 8, "cache_mb": 0}


def env_name(field: str) -> str:
    return PREFIX + _NAMES.get(field, field.upper())


def _parse(name: str, raw: str, kind: str, minimum: int):
    if kind == "bool":
        return raw.lower() in TRUE
    if kind.startswith("int"):
        try:
            number = int(raw)
        except ValueError:
            raise EngineError("engine_unavailable", f"{name}={raw!r} is not a whole number",
                              hint="Correct it, or unset it.") from None
        if number < minimum:
            raise EngineError("engine_unavailable", f"{name} must be at least {minimum}, not {number}",
                              hint="Correct it, or unset it.")
        return number
    return raw


def settings() -> Settings:
    """The settings in force now (read afresh: tests and the installer change the environment)."""
    return Settings.from_env()
