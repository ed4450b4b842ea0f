"""The plug-in as the installer installs it registers in a real GIMP 3.0 and 3.2.

The installer runs on the host with HOME pointing into the cached Debian chroot
(tests/gimp/build_roots.sh), finds the GIMP profile there by itself, and installs the
plug-in folder; then the chroot's gimp-console starts with that HOME and must know
plug-in-drip-matting. Skipped where the roots are absent (see tests/gimp/harness.py).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "gimp"))
import harness  # noqa: E402

from installer import testing  # noqa: E402

pytestmark = [pytest.mark.gimp, pytest.mark.slow]
HOME_IN_ROOT = "/tmp/drip-installer-e2e/home"

CHECK = r"""
import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp
pdb = Gimp.get_pdb()
proc = pdb.lookup_procedure("plug-in-drip-matting") if pdb.procedure_exists("plug-in-drip-matting") else None
print("DRIP-CHECK " + __import__("json").dumps({
    "gimp": Gimp.version(),
    "registered": proc is not None,
    "menu_paths": list(proc.get_menu_paths()) if proc else [],
    "label": proc.get_menu_label() if proc else None,
}))
"""


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory):
    wheel = testing.test_wheel(tmp_path_factory.mktemp("wheel"))
    return testing.user_venv(tmp_path_factory.mktemp("venv"), wheel), wheel


@pytest.mark.parametrize("version", ["3.0", "3.2"])
def test_installed_plugin_registers_in_real_gimp(version, user_venv):
    reason = harness.skip_reason(version)
    if reason:
        pytest.skip(reason)
    venv, wheel = user_venv
    root = harness.root_dir(version)
    home = root / HOME_IN_ROOT.lstrip("/")
    shutil.rmtree(home.parent, ignore_errors=True)
    (home / ".config" / "GIMP" / harness.VERSIONS[version]["profile"]).mkdir(parents=True)
    try:
        env = testing.home_env(home)
        r = subprocess.run([sys.executable, str(REPO / "installer" / "install.py"), "--yes",
                            "--torch", "skip", "--engine", "classical", "--source", str(wheel),
                            f"--pip-args={testing.OFFLINE_PIP}", "--venv", str(venv)],
                           env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        folder = home / ".config/GIMP" / harness.VERSIONS[version]["profile"] / "plug-ins/drip_matting"
        assert os.access(folder / "drip_matting.py", os.X_OK)
        with harness.ProcMount(root):
            proc = harness.run_gimp(version, CHECK, {"HOME": HOME_IN_ROOT}, timeout=300)
        out = proc.stdout.decode(errors="replace")
        lines = [line for line in out.splitlines() if line.startswith("DRIP-CHECK ")]
        assert lines, out[-4000:]
        info = json.loads(lines[-1][len("DRIP-CHECK "):])
        assert info["gimp"].startswith(version), info
        assert info["registered"], out[-4000:]
        assert any(p.startswith("<Image>/Filters") for p in info["menu_paths"]), info
        assert "Exec format error" not in out and "Skipping potential plug-in" not in out
        # and the installer takes it away again
        r = subprocess.run([sys.executable, str(REPO / "installer" / "install.py"), "--uninstall", "--yes"],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert not folder.exists()
    finally:
        shutil.rmtree(home.parent, ignore_errors=True)
