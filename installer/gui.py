"""The installer window (``install.py --gui``): a PyQt6 wizard over the same plan as the terminal.

Pages: welcome; GIMP profiles (check boxes, add another); engine and device (what was
detected, disk space); DRIP model (none / local folder / download); install (progress bar,
live log); finish (how to use it in GIMP, where the logs are). The install runs in a
QThread and reports through signals, so the window never freezes.

PyQt6 is not in the standard library: when it is missing, cli.py first builds the
installer's venv, pip-installs PyQt6 there and re-runs this window with that Python.
This module imports what it shares with cli.py from common.py, never cli.py itself.
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path

from PyQt6.QtCore import QThread, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

import drip_protocol as protocol

from . import manifest as manifest_mod
from . import model_import, profiles, torch_choice
from . import venv as venv_mod
from .common import free_mb, installer_command, options_from, parser
from .install_steps import build_install
from .options import Options, choose_engine, default_venv, model_given, version
from .plan import InstallError, Reporter

PAGE_IDS = ("welcome", "profiles", "engine", "model", "install", "finish")


def _label(text: str, wrap: bool = True) -> QLabel:
    lab = QLabel(text)
    lab.setWordWrap(wrap)
    lab.setTextInteractionFlags(lab.textInteractionFlags())
    return lab


class SignalReporter(Reporter):
    def __init__(self, worker: "InstallWorker"):
        self.worker = worker

    def log(self, text: str) -> None:
        self.worker.log.emit(text)

    def step(self, index: int, total: int, title: str) -> None:
        self.worker.step.emit(index, total, title)

    def fraction(self, value: float) -> None:
        self.worker.fraction.emit(float(value))


class InstallWorker(QThread):
    """Builds and runs the plan off the GUI thread."""
    log = pyqtSignal(str)
    step = pyqtSignal(int, int, str)
    fraction = pyqtSignal(float)
    succeeded = pyqtSignal(int)          # number of steps that changed something
    failed = pyqtSignal(str)

    def __init__(self, options: Options, parent=None):
        super().__init__(parent)
        self.options = options
        self.plan = None

    def run(self) -> None:  # noqa: D401 - QThread entry point
        try:
            self.plan = build_install(self.options)
            self.log.emit(self.plan.describe())
            changed = self.plan.run(SignalReporter(self))
        except (InstallError, venv_mod.VenvError, model_import.ModelError, OSError) as exc:
            self.failed.emit(str(exc))
            return
        except Exception:  # noqa: BLE001 - show, do not crash the window
            self.failed.emit(traceback.format_exc())
            return
        self.succeeded.emit(changed)


class WelcomePage(QWizardPage):
    def __init__(self):
        super().__init__()
        self.setTitle(f"Drip Matting {version()}")
        self.setSubTitle("AI image matting for GIMP 3")
        lay = QVBoxLayout(self)
        lay.addWidget(_label(
            "This installs Drip Matting for your user account:\n\n"
            "  \u2022  a private Python environment with the matting server,\n"
            "  \u2022  the \u201cDrip Matting\u201d plug-in in the GIMP 3 profiles you choose,\n"
            "  \u2022  optionally a DRIP model (the classical engine works without one).\n\n"
            "Nothing outside your home folder is changed. You can run the installer again at any time, "
            f"and remove everything with \u201c{installer_command('--uninstall')}\u201d."))
        lay.addStretch(1)


class ProfilesPage(QWizardPage):
    def __init__(self):
        super().__init__()
        self.setTitle("GIMP profiles")
        self.setSubTitle("The plug-in is installed into each checked GIMP 3 profile.")
        self.lay = QVBoxLayout(self)
        self.boxes: list[tuple[QCheckBox, profiles.Profile]] = []
        self.box_area = QVBoxLayout()
        self.lay.addLayout(self.box_area)
        self.note = _label("")
        self.lay.addWidget(self.note)
        self.add_button = QPushButton("Add another profile folder\u2026")
        self.add_button.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addStretch(1)
        self.lay.addLayout(row)
        self.lay.addStretch(1)
        self.found = profiles.find_profiles()
        for prof in self.found:
            self._add_box(prof)
        if not self.found:
            self.note.setText(profiles.no_gimp_message())

    def _add_box(self, prof: profiles.Profile) -> None:
        box = QCheckBox(prof.label())
        box.setChecked(True)
        box.toggled.connect(self.completeChanged)
        self.box_area.addWidget(box)
        self.boxes.append((box, prof))
        self.completeChanged.emit()

    def add_profile(self, path: str) -> bool:
        """Add a profile folder the user picked; False (and a note) if it is not a GIMP 3 profile."""
        try:
            prof = profiles.named_profile(path)
        except profiles.ProfileError as exc:
            self.note.setText(str(exc))
            return False
        if any(p.path == prof.path for _, p in self.boxes):
            return True
        self._add_box(prof)
        self.note.setText("")
        return True

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "GIMP 3 profile folder (e.g. ~/.config/GIMP/3.0)")
        if path:
            self.add_profile(path)

    def chosen(self) -> list[profiles.Profile]:
        return [p for box, p in self.boxes if box.isChecked()]

    def isComplete(self) -> bool:
        return bool(self.chosen())


def add_drip_later() -> str:
    return (f"Add DRIP later: {installer_command('--drip-model', 'FOLDER')} with a DRIP model folder "
            "(no DRIP weights are published; docs/drip.md says how to make one).")


class EnginePage(QWizardPage):
    def __init__(self, options: Options):
        super().__init__()
        self.options = options
        self.setTitle("Engine and device")
        self.setSubTitle("The classical engine is small and fast and needs no model. DRIP needs torch "
                         "(gigabytes) and a DRIP model you make yourself.")
        lay = QVBoxLayout(self)
        # DRIP is only worth its torch download with a model to run: recommend it only then
        with_model = model_given(options)
        self.classical = QRadioButton("Classical engine only, no torch"
                                      + ("" if with_model else " (recommended: no DRIP model given)"))
        self.drip = QRadioButton("DRIP and the classical engine (installs torch)"
                                 + (" (recommended: a DRIP model is given)" if with_model else ""))
        group = QButtonGroup(self)
        group.addButton(self.classical)
        group.addButton(self.drip)
        choice = choose_engine(options, manifest_mod.load())
        (self.drip if choice.engine == "drip" else self.classical).setChecked(True)
        lay.addWidget(self.classical)
        lay.addWidget(self.drip)
        self.add_later = _label(add_drip_later())
        lay.addWidget(self.add_later)
        self.kept = _label(f"Preselected: {choice.reason}." if choice.kept else "")
        self.kept.setVisible(choice.kept)
        lay.addWidget(self.kept)
        self.gpus = torch_choice.detect_nvidia() if options.gpus is None else options.gpus
        detected = choose_safe("auto", "auto", self.gpus)
        self.detected = _label(f"Detected: {detected.reason}.")
        lay.addWidget(self.detected)
        row = QHBoxLayout()
        row.addWidget(QLabel("torch build:"))
        self.torch = QComboBox()
        for value, text in (("auto", f"automatic ({detected.build})"), ("cpu", "CPU"),
                            ("cuda", "NVIDIA CUDA"), ("skip", "do not install torch (I manage it myself)")):
            self.torch.addItem(text, value)
        self.torch.setCurrentIndex(max(0, self.torch.findData(options.torch)))
        row.addWidget(self.torch, 1)
        lay.addLayout(row)
        self.disk = _label("")
        lay.addWidget(self.disk)
        lay.addStretch(1)
        self.drip.toggled.connect(self.refresh)
        self.torch.currentIndexChanged.connect(self.refresh)
        self.refresh()

    def engine(self) -> str:
        return "classical" if self.classical.isChecked() else "drip"

    def refresh(self) -> None:
        self.torch.setEnabled(self.drip.isChecked())
        t = choose_safe(self.torch.currentData(), self.engine(), self.gpus)
        need = torch_choice.disk_needed_mb(t, self.engine(), False)
        free = free_mb(default_venv())
        self.disk.setText(f"Disk space needed: about {need / 1000:.1f} GB (plus about "
                          f"{torch_choice.SIZE_MB['model'] / 1000:.1f} GB for a DRIP model); free: "
                          f"{free / 1000:.1f} GB.\n{t.reason}.")


def choose_safe(requested, engine, gpus):
    try:
        return torch_choice.choose_torch(requested, engine, gpus=gpus)
    except ValueError as exc:
        return torch_choice.TorchPlan("skip", None, str(exc))


class ModelPage(QWizardPage):
    def __init__(self, options: Options):
        super().__init__()
        self.setTitle("DRIP model")
        self.setSubTitle("A DRIP model folder holds drip.json with the sha256 of every weight file.")
        lay = QVBoxLayout(self)
        self.none = QRadioButton("No model now (the classical engine works; add one later)")
        self.local = QRadioButton("Import a model folder I have:")
        self.download = QRadioButton("Download a model")
        group = QButtonGroup(self)
        for b in (self.none, self.local, self.download):
            group.addButton(b)
            b.toggled.connect(self.completeChanged)
        lay.addWidget(self.none)
        lay.addWidget(self.local)
        row = QHBoxLayout()
        self.path = QLineEdit(options.drip_model or "")
        self.path.setPlaceholderText("folder with drip.json")
        self.path.textChanged.connect(self.completeChanged)
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        lay.addLayout(row)
        self.link = QCheckBox("Use the folder where it is (do not copy it)")
        self.link.setChecked(options.model_mode == "link")
        lay.addWidget(self.link)
        lay.addWidget(self.download)
        self.url = QLineEdit(options.model_url or "")
        sources = model_import.configured_sources()
        self.url.setPlaceholderText(sources[0]["url"] if sources
                                    else "archive address (no source is configured for this release)")
        self.url.textChanged.connect(self.completeChanged)
        lay.addWidget(self.url)
        self.sources = sources
        self.note = _label("")
        lay.addWidget(self.note)
        self.engine_note = _label("")
        lay.addWidget(self.engine_note)
        lay.addStretch(1)
        chosen = self.local if options.drip_model else self.download if options.model_url else self.none
        chosen.setChecked(True)

    def initializePage(self) -> None:
        # a model is of no use to the classical engine (the install would refuse it)
        drip = self.wizard().engine_page.engine() == "drip"
        for widget in (self.local, self.path, self.link, self.download, self.url):
            widget.setEnabled(drip)
        if not drip:
            self.none.setChecked(True)
        self.engine_note.setText("" if drip else "The classical engine needs no model: go Back and choose "
                                 "DRIP to import one now. " + add_drip_later())

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "DRIP model folder")
        if path:
            self.path.setText(path)

    def isComplete(self) -> bool:
        self.note.setText("")
        if self.local.isChecked():
            p = self.path.text().strip()
            if not p:
                return False
            try:
                model_import.read_manifest(Path(p).expanduser())
            except model_import.ModelError as exc:
                self.note.setText(str(exc))
                return False
        if self.download.isChecked():
            return bool(self.url.text().strip() or self.sources)
        return True

    def apply(self, options: Options) -> None:
        options.drip_model = options.model_url = None
        options.download_model = False
        if self.local.isChecked():
            options.drip_model = self.path.text().strip()
            options.model_mode = "link" if self.link.isChecked() else "copy"
        elif self.download.isChecked():
            options.model_url = self.url.text().strip() or None
            options.download_model = not options.model_url


class InstallPage(QWizardPage):
    def __init__(self, wizard: "InstallerWizard"):
        super().__init__()
        self.wiz = wizard
        self.setTitle("Installing")
        self.setSubTitle("You can follow every step below; long downloads resume if interrupted.")
        lay = QVBoxLayout(self)
        self.status = _label("")
        lay.addWidget(self.status)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        lay.addWidget(self.bar)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setFont(QFont("DejaVu Sans Mono", 8))
        lay.addWidget(self.log, 1)
        self.done = False
        self.error: str | None = None
        self.changed = 0
        self.worker: InstallWorker | None = None
        self._step = (0, 1)

    def initializePage(self) -> None:
        self.done, self.error = False, None
        self.log.clear()
        self.bar.setValue(0)
        opts = self.wiz.collect_options()
        self.status.setText("Preparing\u2026")
        self.worker = InstallWorker(opts, self)
        self.worker.log.connect(self.log.appendPlainText)
        self.worker.step.connect(self._on_step)
        self.worker.fraction.connect(self._on_fraction)
        self.worker.succeeded.connect(self._on_ok)
        self.worker.failed.connect(self._on_fail)
        self.worker.start()
        self.completeChanged.emit()

    def _on_step(self, index: int, total: int, title: str) -> None:
        self._step = (index, total)
        self.status.setText(f"Step {index + 1} of {total}: {title}")
        self.bar.setValue(int(1000 * index / max(total, 1)))

    def _on_fraction(self, value: float) -> None:
        index, total = self._step
        self.bar.setValue(int(1000 * (index + min(max(value, 0.0), 1.0)) / max(total, 1)))

    def _on_ok(self, changed: int) -> None:
        self.done, self.changed = True, changed
        self.bar.setValue(1000)
        self.status.setText("Done." if changed else "Done: everything was already in place.")
        self.log.moveCursor(self.log.textCursor().MoveOperation.End)
        self.log.ensureCursorVisible()
        self.completeChanged.emit()

    def _on_fail(self, message: str) -> None:
        self.error = message
        self.status.setText("The installation failed (nothing is left half-installed): "
                            + message.splitlines()[-1])
        self.status.setStyleSheet("color: #b00020")
        self.log.appendPlainText("\nERROR: " + message)
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.done

    def running(self) -> bool:
        return self.worker is not None and self.worker.isRunning()


class FinishPage(QWizardPage):
    def __init__(self, wizard: "InstallerWizard"):
        super().__init__()
        self.wiz = wizard
        self.setTitle("Drip Matting is installed")
        lay = QVBoxLayout(self)
        self.text = _label("")
        lay.addWidget(self.text)
        lay.addStretch(1)

    def initializePage(self) -> None:
        plan = self.wiz.install_page.worker.plan if self.wiz.install_page.worker else None
        targets = plan.targets if plan else []
        lines = ["How to use it in GIMP:",
                 "  1. Restart GIMP (it finds new plug-ins at start-up).",
                 "  2. Open an image and select the object roughly (or paint a trimap channel).",
                 "  3. Filters \u25b8 Drip Matting\u2026 \u2014 the first run starts the matting server.",
                 "",
                 "Installed into:"]
        lines += [f"  {t.plugins_dir / 'drip_matting'}" for t in targets]
        if any(t.kind == "flatpak" for t in targets):
            lines += ["", "Flatpak GIMP: allow it to start the server on the host once with",
                      "  flatpak override --user --talk-name=org.freedesktop.Flatpak org.gimp.GIMP"]
        lines += ["", f"Server log: {protocol.default_log_file()}",
                  f"Model: {(plan.model_path if plan else None) or 'none (classical engine)'}"]
        if plan and plan.engine == "classical":
            lines.append(add_drip_later())
        lines.append(f"Remove everything: {installer_command('--uninstall')}")
        self.text.setText("\n".join(lines))


class InstallerWizard(QWizard):
    def __init__(self, options: Options | None = None):
        super().__init__()
        self.options = options or Options()
        self.setWindowTitle("Drip Matting installer")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.welcome_page = WelcomePage()
        self.profiles_page = ProfilesPage()
        self.engine_page = EnginePage(self.options)
        self.model_page = ModelPage(self.options)
        self.install_page = InstallPage(self)
        self.finish_page = FinishPage(self)
        for page in (self.welcome_page, self.profiles_page, self.engine_page, self.model_page,
                     self.install_page, self.finish_page):
            self.addPage(page)
        self.resize(720, 520)

    def collect_options(self) -> Options:
        o = Options(**{k: getattr(self.options, k) for k in self.options.__dataclass_fields__})
        o.gimp_profiles = [str(p.path) for p in self.profiles_page.chosen()]
        o.engine = self.engine_page.engine()
        o.torch = self.engine_page.torch.currentData()
        self.model_page.apply(o)
        return o

    def reject(self) -> None:
        if self.install_page.running():
            return  # cannot cancel half way: steps are short and each one is atomic
        super().reject()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    wizard = InstallerWizard(options_from(args))
    wizard.show()
    return app.exec()
