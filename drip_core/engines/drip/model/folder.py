"""The DRIP model folder: layout, ``drip.json`` manifest and verification.

Layout (diffusers sub-folders, everything in safetensors)::

    drip.json                          format, version, options, trained flag, sha256 of every file
    unet/                              UNet2DConditionModel (16-ch conv_in, projection class embedding)
    vae/                               AutoencoderKL (Stable Diffusion 2's, unchanged)
    transparency_decoder/              TransparencyDecoder
    scheduler/scheduler_config.json    DPMSolverMultistepScheduler (training derives DDPM from it)
    empty_text_embedding.safetensors   CLIP embedding of "" (so inference needs no text encoder)

Verification cost: hashing a multi-GB folder takes seconds to tens of seconds, too slow for
every server start. ``verify_model_folder(mode="cached")`` (the default) hashes each file once
and records (size, mtime_ns, sha256) in ``.drip-hashes.json`` inside the folder (or, if the
folder is read-only, skips the cache and hashes every time); a file whose size or mtime changed
is hashed again. ``mode="full"`` always hashes, ``mode="off"`` only checks that files exist.
The environment variable DRIP_MATTING_VERIFY overrides the mode.
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone

from ....settings import settings

FORMAT = "drip-matting-model"
FORMAT_VERSION = 1
MANIFEST = "drip.json"
HASH_CACHE = ".drip-hashes.json"
EMPTY_TEXT_FILE = "empty_text_embedding.safetensors"
REQUIRED = ("unet/config.json", "vae/config.json", "transparency_decoder/config.json",
            "scheduler/scheduler_config.json", EMPTY_TEXT_FILE)

DEFAULT_OPTIONS = {
    "in_channels": 16,               # [z_image, z_trimap, z_fg_t, z_alpha_t]; 12 = GeoWizard layout
    "switcher_encoding": "scalar",   # [sin v, cos v], v = 1 fg / 0 alpha
    "prediction_type": "v_prediction",
    "cross_domain_attention": True,
    "alpha_channels": "mean",        # alpha = channel mean of the 3-channel decode
}


class ModelFolderError(Exception):
    """``code`` is 'model_missing' or 'model_corrupt' (the wire protocol's codes)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def sha256_file(path: str, chunk: int = 8 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def _hashed_files(folder: str) -> list[str]:
    """Every file of the model except the manifest and the hash cache, as relative '/' paths."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name in (MANIFEST, HASH_CACHE) or name.startswith("."):
                continue
            out.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return out


def _load_cache(folder: str) -> dict:
    try:
        with open(os.path.join(folder, HASH_CACHE), "r", encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_cache(folder: str, cache: dict) -> None:
    tmp = os.path.join(folder, HASH_CACHE + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(cache, f, indent=1, sort_keys=True)
        os.replace(tmp, os.path.join(folder, HASH_CACHE))
    except OSError:
        pass  # read-only folder: we simply hash again next time


def _file_hash(folder: str, rel: str, cache: dict, use_cache: bool) -> str:
    path = os.path.join(folder, rel)
    st = os.stat(path)
    entry = cache.get(rel)
    if use_cache and isinstance(entry, dict) and entry.get("size") == st.st_size \
            and entry.get("mtime_ns") == st.st_mtime_ns and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = sha256_file(path)
    cache[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    return digest


def write_manifest(folder: str, *, options: dict, trained: bool, stages: dict | None = None,
                   source: dict | None = None, previous: dict | None = None) -> dict:
    """Hash every file and write ``drip.json`` (plus the hash cache). Returns the manifest."""
    cache: dict = {}
    files = {rel: _file_hash(folder, rel, cache, use_cache=False) for rel in _hashed_files(folder)}
    manifest = dict(previous or {})
    manifest.update({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "trained": bool(trained),
        "options": {**DEFAULT_OPTIONS, **options},
        "stages": stages if stages is not None else manifest.get("stages", {}),
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": files,
    })
    if source is not None:
        manifest["source"] = source
    with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    _save_cache(folder, cache)
    return manifest


def read_manifest(folder: str) -> dict:
    """Parse and sanity-check ``drip.json`` (no hashing)."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ModelFolderError(
            "model_missing", f"the DRIP model folder {folder} does not exist: import a model with the "
            "installer (--drip-model PATH) or convert one with drip-convert")
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        raise ModelFolderError("model_missing", f"{folder} is not a DRIP model folder (no {MANIFEST}): point "
                                                "to the folder drip-convert or drip-train wrote")
    try:
        with open(path, "r", encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as exc:
        raise ModelFolderError("model_corrupt",
                               f"{path} cannot be read ({exc}): import the model again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFolderError("model_corrupt", f"{path} is not a {FORMAT} manifest: import the model again")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFolderError(
            "model_corrupt", f"{folder} has model format version {version}, this Drip Matting reads version "
            f"{FORMAT_VERSION}: convert or import the model again with this version's drip-convert / "
            "installer")
    if not isinstance(manifest.get("files"), dict) or not isinstance(manifest.get("options"), dict):
        raise ModelFolderError("model_corrupt", f"{path} has no file list or options: import the model again")
    manifest["options"] = {**DEFAULT_OPTIONS, **manifest["options"]}
    return manifest


def verify_model_folder(folder: str, mode: str | None = None) -> dict:
    """Check the manifest, the presence of every part and the sha256 of every file.

    Raises ModelFolderError with a message that says how to fix the problem."""
    folder = os.fspath(folder)
    mode = (settings().verify or mode or "cached").lower()
    if mode not in ("cached", "full", "off"):
        raise ValueError(f"verify mode must be cached, full or off, not {mode!r}")
    manifest = read_manifest(folder)
    for rel in REQUIRED:
        if not os.path.isfile(os.path.join(folder, rel)):
            raise ModelFolderError("model_corrupt", f"{folder} lacks {rel}: the folder is incomplete, "
                                                    "import or convert the model again")
    cache = _load_cache(folder) if mode == "cached" else {}
    before = json.dumps(cache, sort_keys=True)
    for rel, expected in manifest["files"].items():
        path = os.path.join(folder, rel)
        if not os.path.isfile(path):
            raise ModelFolderError("model_corrupt", f"{folder} lacks {rel}, listed in {MANIFEST}: "
                                                    "import the model again")
        if mode == "off":
            continue
        if _file_hash(folder, rel, cache, use_cache=(mode == "cached")) != expected:
            raise ModelFolderError(
                "model_corrupt", f"{rel} in {folder} does not match its sha256 in {MANIFEST} "
                "(damaged or partly copied): import the model again")
    if mode == "cached" and json.dumps(cache, sort_keys=True) != before:
        _save_cache(folder, cache)
    return manifest
