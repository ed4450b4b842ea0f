"""The installer window, driven offscreen with pytest-qt: pages, detected profiles, a full
install into a temporary home, and a screenshot of each page.

To refresh the screenshots in docs/images/:
    DRIP_INSTALLER_SCREENSHOTS=docs/images QT_QPA_PLATFORM=offscreen pytest tests/test_installer_gui.py
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from installer import testing  # noqa: E402
from installer.options import Options  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return testing.test_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory, wheel):
    return testing.user_venv(tmp_path_factory.mktemp("venv"), wheel)


@pytest.fixture
def home(tmp_path, monkeypatch):
    base = tmp_path
    if os.environ.get("DRIP_INSTALLER_SCREENSHOTS"):  # short, readable paths in the pictures
        import shutil
        base = Path("/tmp/drip-demo")
        shutil.rmtree(base, ignore_errors=True)
    h = testing.fake_home(base / "home" / "alice")
    for k in testing.ENV_VARS:
        monkeypatch.delenv(k, raising=False)
    for k, v in testing.TOOL_HOMES.items():
        monkeypatch.setenv(k, os.environ.get(k, v))
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return h


def shots_dir(tmp_path) -> Path:
    d = os.environ.get("DRIP_INSTALLER_SCREENSHOTS")
    return Path(d) if d else tmp_path / "shots"


def shoot(wizard, name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"installer-{name}.png"
    assert wizard.grab().save(str(path))
    return path


def test_wizard_pages_and_full_install(qtbot, home, tmp_path, wheel, user_venv):
    from installer.gui import InstallerWizard
    model = testing.make_model(home / "Downloads" / "drip-model")
    opts = Options(source=str(wheel), venv=str(user_venv), torch="skip", pip_args=testing.OFFLINE_PIP.split(),
                   gpus=[])
    wiz = InstallerWizard(opts)
    qtbot.addWidget(wiz)
    wiz.show()
    qtbot.waitExposed(wiz)
    shots = shots_dir(tmp_path)
    saved = [shoot(wiz, "1-welcome", shots)]

    wiz.next()
    page = wiz.profiles_page
    assert wiz.currentPage() is page
    labels = [box.text() for box, _ in page.boxes]
    assert len(labels) == 3
    assert any("GIMP 3.2" in t for t in labels) and any("Flatpak" in t for t in labels)
    # add another profile: a GIMP 2.10 one is refused with a reason, a portable 3.x one is added
    old = home / ".config/GIMP/2.10"
    old.mkdir()
    assert not page.add_profile(str(old)) and "needs GIMP 3.0 or later" in page.note.text()
    extra = tmp_path / "portable/GIMP/3.0"
    extra.mkdir(parents=True)
    assert page.add_profile(str(extra)) and len(page.boxes) == 4
    page.boxes[2][0].setChecked(False)  # not the Flatpak one
    for box, _ in page.boxes:
        box.setChecked(False)
    assert not page.isComplete()  # at least one profile is needed
    for i in (0, 1, 3):
        page.boxes[i][0].setChecked(True)
    assert page.isComplete()
    saved.append(shoot(wiz, "2-profiles", shots))

    wiz.next()
    engine = wiz.engine_page
    assert "no NVIDIA GPU found" in engine.detected.text()
    assert "Disk space needed" in engine.disk.text()
    engine.classical.setChecked(True)
    assert not engine.torch.isEnabled() and "classical engine only" in engine.disk.text()
    engine.drip.setChecked(True)
    assert engine.torch.currentData() == "skip"
    saved.append(shoot(wiz, "3-engine", shots))

    wiz.next()
    mp = wiz.model_page
    assert mp.none.isChecked() and mp.isComplete()
    mp.local.setChecked(True)
    mp.path.setText(str(tmp_path / "not-a-model"))
    assert not mp.isComplete() and "does not exist" in mp.note.text()
    mp.path.setText(str(model))
    assert mp.isComplete()
    saved.append(shoot(wiz, "4-model", shots))

    wiz.next()
    ip = wiz.install_page
    assert wiz.currentPage() is ip
    # the window stays responsive while the worker thread installs
    with qtbot.waitSignal(ip.worker.succeeded, timeout=120_000, raising=True):
        pass
    qtbot.waitUntil(lambda: ip.isComplete(), timeout=5000)
    assert ip.bar.value() == 1000
    log = ip.log.toPlainText()
    assert "copy and verify the DRIP model" in log and "installed" in log
    saved.append(shoot(wiz, "5-install", shots))

    wiz.next()
    fp = wiz.finish_page
    text = fp.text.text()
    assert "Filters" in text and "Drip Matting" in text and "server.log" in text
    saved.append(shoot(wiz, "6-finish", shots))

    dest = home / ".local/share/drip-matting/models/drip-model"
    for prof in (home / ".config/GIMP/3.0", home / ".config/GIMP/3.2", extra):
        cfg = json.loads((prof / "plug-ins/drip_matting/drip_matting.json").read_text())
        assert cfg["server_command"][-2:] == ["--drip-model", str(dest)]
        assert os.access(prof / "plug-ins/drip_matting/drip_matting.py", os.X_OK)
    assert not (home / ".var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins").exists()
    assert json.loads((home / ".config/drip-matting/config.json").read_text()) == {"drip_model": str(dest)}
    for p in saved:
        assert 2_000 < p.stat().st_size < 150_000  # small PNGs


def test_wizard_shows_a_failure_and_no_gimp(qtbot, tmp_path, monkeypatch, wheel, user_venv):
    from installer.gui import InstallerWizard
    home = tmp_path / "empty-home"
    home.mkdir()
    for k in testing.ENV_VARS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(home))
    bad = tmp_path / "drip_matting-0.1.0-py3-none-any.whl"
    bad.write_bytes(b"not a wheel")
    wiz = InstallerWizard(Options(source=str(bad), venv=str(user_venv), torch="skip",
                                  engine="classical", pip_args=testing.OFFLINE_PIP.split(), gpus=[]))
    qtbot.addWidget(wiz)
    wiz.show()
    wiz.next()
    assert "No GIMP 3 profile was found" in wiz.profiles_page.note.text()
    assert not wiz.profiles_page.isComplete()
    custom = home / ".config/GIMP/3.0"
    custom.mkdir(parents=True)
    assert wiz.profiles_page.add_profile(str(custom))
    wiz.next()
    wiz.next()
    wiz.next()
    ip = wiz.install_page
    with qtbot.waitSignal(ip.worker.failed, timeout=120_000) as sig:
        pass
    assert "pip install failed" in sig.args[0]
    qtbot.waitUntil(lambda: "failed" in ip.status.text(), timeout=5000)
    assert not ip.isComplete()
    assert not (custom / "plug-ins/drip_matting").exists()
    assert "Successfully installed" not in ip.log.toPlainText()


def test_wizard_recommends_classical_without_a_model(qtbot, home, tmp_path):
    """No DRIP weights are published: without a model the window recommends (and preselects) the
    classical engine, says how to add DRIP later, and offers no model to a classical install."""
    from installer import manifest
    from installer.gui import InstallerWizard
    wiz = InstallerWizard(Options(gpus=[]))
    qtbot.addWidget(wiz)
    engine = wiz.engine_page
    assert engine.classical.isChecked() and "recommended" in engine.classical.text()
    assert "recommended" not in engine.drip.text()
    assert "--drip-model FOLDER" in engine.add_later.text() and not engine.kept.isVisibleTo(engine)
    assert "Disk space needed: about 0.3 GB" in engine.disk.text()
    wiz.show()
    for _ in range(3):
        wiz.next()
    mp = wiz.model_page
    assert wiz.currentPage() is mp and mp.none.isChecked() and not mp.local.isEnabled()
    assert "--drip-model FOLDER" in mp.engine_note.text()
    wiz.back()
    engine.drip.setChecked(True)
    wiz.next()
    assert mp.local.isEnabled() and mp.engine_note.text() == ""
    assert wiz.collect_options().engine == "drip"

    # a model given: DRIP is the recommendation
    model = testing.make_model(tmp_path / "drip-model")
    with_model = InstallerWizard(Options(gpus=[], drip_model=str(model)))
    qtbot.addWidget(with_model)
    assert with_model.engine_page.drip.isChecked() and "recommended" in with_model.engine_page.drip.text()
    assert "recommended" not in with_model.engine_page.classical.text()

    # the last install chose DRIP: preselected, and the page says why
    manifest.save({**manifest.empty(), "engine": "drip"})
    rerun = InstallerWizard(Options(gpus=[]))
    qtbot.addWidget(rerun)
    assert rerun.engine_page.drip.isChecked()
    assert "kept from the last install" in rerun.engine_page.kept.text()
    assert rerun.engine_page.kept.isVisibleTo(rerun.engine_page)
