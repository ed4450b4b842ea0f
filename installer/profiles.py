"""Finding GIMP 3.x user profiles (where plug-ins go), on every OS and in Flatpak/Snap.

GIMP keeps one profile per minor version (``GIMP/3.0``, ``GIMP/3.2``, ...) and only
creates it on first start. The plug-in goes into ``<profile>/plug-ins/drip_matting/``.
Standard library only: this runs before the virtual environment exists.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

PROFILE_NAME = re.compile(r"^(\d+)\.(\d+)$")
FLATPAK_APP = "org.gimp.GIMP"


class ProfileError(Exception):
    """A profile the user named cannot be used (message says why and what to do)."""


@dataclass(frozen=True)
class Profile:
    path: Path          # the GIMP/3.x folder
    version: str        # "3.0", "3.2", ... ("" if the folder name does not say)
    kind: str           # "native", "flatpak", "snap" or "custom"

    @property
    def plugins_dir(self) -> Path:
        return self.path / "plug-ins"

    @property
    def sandboxed(self) -> bool:
        return self.kind in ("flatpak", "snap")

    def label(self) -> str:
        what = {"native": "GIMP", "flatpak": "GIMP (Flatpak)", "snap": "GIMP (Snap)",
                "custom": "GIMP profile"}[self.kind]
        return f"{what} {self.version}".rstrip() + f" - {self.path}"

    def to_json(self) -> dict:
        return {"path": str(self.path), "version": self.version, "kind": self.kind}


def _version_key(version: str) -> tuple:
    m = PROFILE_NAME.match(version)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def search_roots(home: str | os.PathLike | None = None, platform: str | None = None,
                 environ: dict | None = None) -> list[tuple[Path, str]]:
    """(folder holding GIMP version folders, kind) for this OS, most usual first."""
    platform = platform or sys.platform
    environ = os.environ if environ is None else environ
    home = Path(home) if home is not None else Path(os.path.expanduser("~"))
    roots: list[tuple[Path, str]] = []
    if platform == "win32":
        appdata = environ.get("APPDATA") or str(home / "AppData" / "Roaming")
        roots.append((Path(appdata) / "GIMP", "native"))
    elif platform == "darwin":
        roots.append((home / "Library" / "Application Support" / "GIMP", "native"))
    else:
        xdg = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        roots.append((Path(xdg) / "GIMP", "native"))
        roots.append((home / ".var" / "app" / FLATPAK_APP / "config" / "GIMP", "flatpak"))
        roots.append((home / "snap" / "gimp" / "current" / ".config" / "GIMP", "snap"))
    return roots


def find_profiles(home=None, platform=None, environ=None) -> list[Profile]:
    """Every GIMP 3.x profile folder that exists, newest version first within each kind."""
    found: list[Profile] = []
    seen: set[str] = set()
    for root, kind in search_roots(home, platform, environ):
        if not root.is_dir():
            continue
        versions = []
        for child in root.iterdir():
            m = PROFILE_NAME.match(child.name)
            if m and m.group(1) == "3" and child.is_dir():
                versions.append(child)
        for child in sorted(versions, key=lambda p: _version_key(p.name), reverse=True):
            key = os.path.realpath(child)
            if key not in seen:
                seen.add(key)
                found.append(Profile(child, child.name, kind))
    return found


def other_gimp_profiles(home=None, platform=None, environ=None) -> list[Path]:
    """GIMP profiles of other major versions (2.10 ...), to explain why nothing was found."""
    out = []
    for root, _kind in search_roots(home, platform, environ):
        if root.is_dir():
            out += sorted(c for c in root.iterdir()
                          if PROFILE_NAME.match(c.name) and not c.name.startswith("3."))
    return out


def named_profile(path: str | os.PathLike, home=None) -> Profile:
    """A profile the user named with --gimp-profile (the GIMP/3.x folder or its plug-ins/)."""
    p = Path(os.path.expanduser(str(path))).absolute()
    if p.name == "plug-ins":
        p = p.parent
    if not p.is_dir():
        raise ProfileError(f"--gimp-profile {path}: no such folder. Name a GIMP 3 profile folder such as "
                           "~/.config/GIMP/3.0 (GIMP creates it the first time it starts).")
    m = PROFILE_NAME.match(p.name)
    if m and m.group(1) != "3":
        raise ProfileError(f"--gimp-profile {path}: this is a GIMP {p.name} profile; Drip Matting needs "
                           "GIMP 3.0 or later (a GIMP 3 plug-in fails there with "
                           "'Namespace Gimp not available').")
    kind = "custom"
    text = str(p)
    if f"{os.sep}.var{os.sep}app{os.sep}{FLATPAK_APP}{os.sep}" in text:
        kind = "flatpak"
    elif f"{os.sep}snap{os.sep}gimp{os.sep}" in text:
        kind = "snap"
    return Profile(p, p.name if m else "", kind)


def no_gimp_message(home=None, platform=None, environ=None) -> str:
    roots = search_roots(home, platform, environ)
    lines = ["No GIMP 3 profile was found. Looked in:"]
    lines += [f"  {root}{os.sep}3.*" for root, _ in roots]
    others = other_gimp_profiles(home, platform, environ)
    if others:
        lines.append("Found only profiles of other GIMP versions: " + ", ".join(str(o) for o in others)
                     + " (Drip Matting needs GIMP 3.0 or later).")
    lines.append("Start GIMP 3 once (it creates its profile folder), then run the installer again, "
                 "or name the profile with --gimp-profile DIR.")
    return "\n".join(lines)
