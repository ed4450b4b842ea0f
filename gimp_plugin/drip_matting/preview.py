"""The dialog's live preview: a picture of the cut-out that follows the dialog's settings.

GTK only; what to show comes from a ``compute`` callback (drip_matting.py reads the reduced copy
and asks the server), so this file knows nothing of layers or jobs. Updates wait until the
settings have been still for a moment: dragging a slider asks the server once, not fifty times.
"""
from __future__ import annotations

import os
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
from dialog_rules import PREVIEW_LONGEST  # noqa: E402 - the box holds the whole reduced copy
from gi.repository import GdkPixbuf, GLib, Gtk  # noqa: E402

SETTLE_MS = 250


class PreviewPane:
    """A framed picture, one line of text under it, a Preview switch and the background's choice.
    ``compute(background)`` -> (width, height, 8-bit RGB bytes, the line to show); it raises to
    say why there is no preview (``describe_error(exc)`` is shown). The switch and the background
    are the dialog's own (GIMP 3.2 crashes on a plug-in's choice aux argument): ``values()``."""

    def __init__(self, compute, describe_error, backgrounds, enabled=True, background=None):
        self.compute = compute
        self.describe_error = describe_error
        self.pending = None
        self.enabled = enabled
        self.image = Gtk.Image()
        self.image.set_size_request(PREVIEW_LONGEST, PREVIEW_LONGEST)
        self.label = Gtk.Label(label="Preview: waiting for the settings")
        self.label.set_line_wrap(True)
        self.label.set_max_width_chars(44)
        self.switch = Gtk.CheckButton.new_with_mnemonic("_Preview")
        self.switch.set_active(enabled)
        self.switch.connect("toggled", lambda button: self.set_enabled(button.get_active()))
        self.backgrounds = Gtk.ComboBoxText()
        for nick, label in backgrounds:
            self.backgrounds.append(nick, label)
        if not self.backgrounds.set_active_id(background or backgrounds[0][0]):
            self.backgrounds.set_active(0)
        self.backgrounds.connect("changed", self.schedule)
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
        row.pack_start(self.switch, False, False, 0)
        row.pack_end(self.backgrounds, False, False, 0)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        box.set_border_width(6)
        for widget, grow in ((self.image, True), (self.label, False), (row, False)):
            box.pack_start(widget, grow, grow, 0)
        self.widget = Gtk.Frame(label="Preview")
        self.widget.add(box)
        self.widget.show_all()

    def values(self) -> dict:
        """What the dialog remembers of the preview."""
        return {"preview": self.enabled, "preview-background": self.backgrounds.get_active_id()}

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            self.image.clear()
            self.label.set_text("Preview is off")
        else:
            self.schedule()

    def schedule(self, *_args) -> None:
        """Update once the settings are still for SETTLE_MS."""
        if self.pending is not None:
            GLib.source_remove(self.pending)
        self.pending = GLib.timeout_add(SETTLE_MS, self._update)

    def _update(self) -> bool:
        self.pending = None
        if not self.enabled:
            return False
        self.label.set_text("Preview: updating...")
        while Gtk.events_pending():  # show the line before the (blocking) request
            Gtk.main_iteration_do(False)
        try:
            width, height, rgb, line = self.compute(self.backgrounds.get_active_id())
        except Exception as exc:  # noqa: BLE001 - no preview is never a failed run: say why, here
            self.image.clear()
            self.label.set_text(f"No preview: {self.describe_error(exc)}")
            print(f"drip-matting: preview: {exc.__class__.__name__}: {exc}", file=sys.stderr)
            return False
        pixbuf = GdkPixbuf.Pixbuf.new_from_bytes(GLib.Bytes.new(bytes(rgb)), GdkPixbuf.Colorspace.RGB,
                                                 False, 8, width, height, width * 3)
        self.image.set_from_pixbuf(pixbuf)
        self.label.set_text(line)
        if os.environ.get("DRIP_MATTING_DEBUG_PROGRESS"):
            print(f"drip-matting preview: {width}x{height}: {line}", file=sys.stderr)
        return False
