"""Importing a DRIP model folder (copy or use in place, sha256-verified) and downloading one.

A DRIP model folder holds ``drip.json`` with the sha256 of every weight file
(drip_core/engines/drip/model/folder.py). That module is standard library only, so the installer
uses its manifest reader and verifier directly (``drip_core.engines`` resolves its names lazily, so
importing it pulls in no numpy); if it cannot be imported (an old bundle without it) a minimal
check of ``{"files": {relpath: sha256}}`` is used instead.

Copying hashes each file while it copies (one pass over multi-GB weights) into a staging
folder next to the destination, then renames it into place: an interrupted import leaves
no half-copied model behind. Downloads resume from a ``.part`` file with an HTTP Range
request.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

try:  # the project's own manifest format and verifier (standard library only)
    from drip_core.engines.drip.model import folder as _mf
except ImportError:  # pragma: no cover - see the module docstring
    _mf = None

MANIFEST = "drip.json"
HASH_CACHE = ".drip-hashes.json"
SOURCES_FILE = Path(__file__).with_name("model_sources.json")
CHUNK = 4 << 20


class ModelError(Exception):
    pass


def read_manifest(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    if _mf is not None:
        try:
            return _mf.read_manifest(str(folder))
        except _mf.ModelFolderError as exc:
            raise ModelError(exc.message) from None
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelError(f"{folder} is not a DRIP model folder (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ModelError(f"{path} has no file list")
    return manifest


def verify_in_place(folder: str | os.PathLike) -> dict:
    """Full check of a folder that stays where it is (hash cache kept inside it, as the server does)."""
    folder = Path(folder)
    if _mf is not None:
        try:
            return _mf.verify_model_folder(str(folder), mode="cached")
        except _mf.ModelFolderError as exc:
            raise ModelError(exc.message) from None
    manifest = read_manifest(folder)
    for rel, expected in manifest["files"].items():
        path = folder / rel
        if not path.is_file():
            raise ModelError(f"{folder} lacks {rel}, listed in {MANIFEST}: the folder is incomplete")
        if _sha256(path) != expected:
            raise ModelError(f"{rel} in {folder} does not match its sha256 in {MANIFEST} "
                             "(damaged or partly copied)")
    return manifest


def _check_structure(folder: Path) -> None:
    """Everything but the hashes (required parts present, manifest format)."""
    if _mf is not None:
        try:
            _mf.verify_model_folder(str(folder), mode="off")
        except _mf.ModelFolderError as exc:
            raise ModelError(exc.message) from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _copy_hashing(src: Path, dst: Path) -> str:
    h = hashlib.sha256()
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        for block in iter(lambda: fi.read(CHUNK), b""):
            h.update(block)
            fo.write(block)
    shutil.copystat(src, dst)
    return h.hexdigest()


def snapshot(folder: str | os.PathLike) -> dict:
    """{relpath: [size, mtime_ns]} of a model folder: lets a second run skip re-hashing."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[p.relative_to(folder).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


def model_name(src: str | os.PathLike) -> str:
    return Path(src).resolve().name or "drip-model"


def copy_model(src: str | os.PathLike, models_dir: str | os.PathLike, log=print, progress=None,
               name: str | None = None) -> Path:
    """Copy a model folder into ``models_dir/<name>``, verifying every sha256 while copying."""
    src = Path(src).resolve()
    models_dir = Path(models_dir)
    manifest = read_manifest(src)
    _check_structure(src)
    dest = models_dir / (name or model_name(src))
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".import-{dest.name}-", dir=models_dir))
    try:
        files = [p for p in sorted(src.rglob("*")) if p.is_file() and p.name != HASH_CACHE]
        total = sum(p.stat().st_size for p in files) or 1
        done = 0
        expected = {k: v for k, v in manifest["files"].items()}
        for p in files:
            rel = p.relative_to(src).as_posix()
            out = staging / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            digest = _copy_hashing(p, out)
            if rel in expected and digest != expected[rel]:
                raise ModelError(f"{rel} in {src} does not match its sha256 in {MANIFEST} (damaged or partly "
                                 "downloaded): get the model again")
            expected.pop(rel, None)
            done += p.stat().st_size
            if progress:
                progress(done / total)
        if expected:
            raise ModelError(f"{src} lacks {sorted(expected)[0]}, listed in {MANIFEST}: "
                             "the folder is incomplete")
        _check_structure(staging)
        old = None
        if dest.exists():
            old = staging.with_name(staging.name + "-old")
            os.replace(dest, old)
        os.replace(staging, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        log(f"model copied and verified: {dest}")
        return dest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def same_model(src: str | os.PathLike, dest: str | os.PathLike, recorded: dict | None) -> bool:
    """True when ``dest`` is an unchanged copy of ``src`` (same manifest, files as we left them)."""
    src, dest = Path(src), Path(dest)
    try:
        if (src / MANIFEST).read_bytes() != (dest / MANIFEST).read_bytes():
            return False
    except OSError:
        return False
    return recorded is not None and snapshot(dest) == recorded


# --- downloading -----------------------------------------------------------------------------

def configured_sources() -> list[dict]:
    """Download sources shipped with this release (installer/model_sources.json)."""
    try:
        data = json.loads(SOURCES_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [s for s in data.get("models", []) if isinstance(s, dict) and s.get("url")]


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, log=print, progress=None,
             timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` from where an earlier try stopped."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and (sha256 is None or _sha256(dest) == sha256):
        log(f"already downloaded: {dest}")
        return dest
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "drip-matting-installer"})
    if have:
        req.add_header("Range", f"bytes={have}-")
        log(f"resuming {url} at {have} bytes")
    else:
        log(f"downloading {url}")
    host = urllib.parse.urlsplit(url).netloc or url
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status = getattr(resp, "status", 200)
            if have and status != 206:
                have = 0  # the server ignored the range: start over
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else None
            with open(part, "ab" if have else "wb") as f:
                done = have
                for block in iter(lambda: resp.read(1 << 20), b""):
                    f.write(block)
                    done += len(block)
                    if progress and total:
                        progress(done / total)
            if total is not None and done < total:
                raise ModelError(f"the download from {host} stopped at {done} of {total} bytes; "
                                 f"run the installer again to resume (kept: {part})")
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # range past the end: the .part is complete
            pass
        else:
            raise ModelError(f"the download from {host} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelError(f"cannot download the model from {host} ({reason}). You seem to be offline or "
                         f"the server is unreachable. What was fetched is kept in {part} and the next run "
                         "resumes; or download the model yourself and run the installer with "
                         "--drip-model FOLDER.") from None
    if sha256 is not None:
        got = _sha256(part)
        if got != sha256:
            part.unlink(missing_ok=True)
            raise ModelError(f"the file downloaded from {host} has sha256 {got[:16]}..., "
                             f"expected {sha256[:16]}...: it was damaged or changed on the server; "
                             "run the installer again")
    os.replace(part, dest)
    return dest


def unpack_model(archive: str | os.PathLike, into: str | os.PathLike) -> Path:
    """Extract an archive and return the folder in it that holds drip.json."""
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                target = (into / info.filename).resolve()
                if not str(target).startswith(str(into.resolve())):
                    raise ModelError(f"{archive} contains an unsafe path: {info.filename}")
            z.extractall(into)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            try:
                t.extractall(into, filter="data")
            except TypeError:  # Python < 3.11.4: no extraction filters; check the names ourselves
                for m in t.getmembers():
                    target = (into / m.name).resolve()
                    if not str(target).startswith(str(into.resolve())) or m.issym() or m.islnk() or m.isdev():
                        raise ModelError(f"{archive} contains an unsafe entry: {m.name}") from None
                t.extractall(into)
    else:
        raise ModelError(f"{archive} is neither a zip nor a tar archive")
    hits = sorted(p.parent for p in into.rglob(MANIFEST))
    if not hits:
        raise ModelError(f"{archive} holds no DRIP model folder ({MANIFEST} not found)")
    return min(hits, key=lambda p: len(p.parts))
