"""The Drip Matting dialog: the settings, the edge controls in their own frame, the live preview
beside them, and a Help button that opens the plug-in's own page.

GIMP's ProcedureDialog builds the widgets from the procedure's arguments; this file only arranges
them. What the preview shows comes from a callback (drip_matting.PreviewSource)."""
from __future__ import annotations

import os
import sys
import webbrowser

import dialog_rules as rules
import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import Gimp, GimpUi, GObject, Gtk  # noqa: E402

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))


def show_dialog(procedure, config, fields, note=None, preview=None, drip_available=True):
    """Run the dialog on ``config``; ``fields``: the settings shown, in order; ``note``: a line
    above them (what the person must choose); ``preview``: (compute, describe_error, remembered
    preview values) for the live preview, or None. -> (True when the person pressed OK, the
    preview's values to remember)."""
    GimpUi.init("drip_matting")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Drip Matting")
    shown = list(fields)
    if note:
        _wrapped(dialog.get_label("loop-note", note, False, False))
        shown.insert(0, "loop-note")
    if not drip_available and "engine" in shown:
        _wrapped(dialog.get_label("drip-howto", rules.DRIP_HOWTO, False, False))
        shown.insert(shown.index("engine") + 1, "drip-howto")
    if not drip_available:
        _grey_out(dialog, "engine", "drip", dict(rules.engine_choices(False))["drip"])
    dialog.get_label("edge-title", "Edge (applied after matting: no rerun needed)", False, False)
    dialog.fill_box("edge-box", list(rules.EDGE_FIELDS))
    dialog.fill_frame("edge-frame", "edge-title", False, "edge-box")
    settings = dialog.fill_box("settings-box", shown + ["edge-frame"])
    dialog.fill(["settings-box"])
    _set_sensitivity(dialog)
    dialog.connect("response", _open_help_page)
    pane = _add_preview(dialog, config, settings, preview) if preview is not None else None
    ok = dialog.run()
    remembered = pane.values() if pane is not None else {}
    dialog.destroy()
    return ok, remembered


def _wrapped(label) -> None:
    label.set_line_wrap(True)
    label.set_max_width_chars(50)


def _set_sensitivity(dialog) -> None:
    """The band only matters for the "band around the selection" source, and a fixed radius only
    when the smart band is off."""
    try:
        values = Gimp.ValueArray.new(1)
        values.append(GObject.Value(GObject.TYPE_STRING, "selection-band"))
        dialog.set_sensitive_if_in("smart-band", None, "trimap-source", values, True)
        off = Gimp.ValueArray.new(1)
        off.append(GObject.Value(GObject.TYPE_BOOLEAN, False))
        dialog.set_sensitive_if_in("band-radius", None, "smart-band", off, True)
    except Exception as exc:  # noqa: BLE001 - cosmetic; older bindings may lack it
        print(f"drip-matting: dialog sensitivity not set ({exc})", file=sys.stderr)


def _grey_out(dialog, field, nick, label) -> None:
    """Grey out one value of a choice in the dialog only (a script may still pass it): a row of
    the combo box GIMP 3.0 draws, or the radio button GIMP 3.2 draws (whose ``label`` it is)."""
    done = False
    try:
        widget = dialog.get_widget(field, GObject.TYPE_NONE)
        for combo in _inside(widget, GimpUi.StringComboBox):
            combo.set_sensitivity(lambda value: value != nick)
            done = True
        for radio in _inside(widget, Gtk.RadioButton):
            if radio.get_label() == label:
                radio.set_sensitive(False)
                done = True
    except Exception as exc:  # noqa: BLE001 - cosmetic: the line under it says why anyway
        print(f"drip-matting: '{nick}' not greyed out ({exc})", file=sys.stderr)
    if not done:
        print(f"drip-matting: '{nick}' not greyed out (no combo box or radio button found)", file=sys.stderr)


def _inside(widget, kind):
    """``widget`` and the widgets inside it that are a ``kind``."""
    if isinstance(widget, kind):
        yield widget
    if isinstance(widget, Gtk.Container):
        for child in widget.get_children():
            yield from _inside(child, kind)


def _add_preview(dialog, config, settings, preview):
    """The preview pane to the left of the settings; it follows every change of the config, and
    shows its first picture once the dialog is up."""
    from preview import PreviewPane
    compute, describe_error, remembered = preview
    pane = PreviewPane(lambda background: compute(config, background), describe_error,
                       rules.PREVIEW_BACKGROUNDS, bool(remembered.get("preview", True)),
                       remembered.get("preview-background"))
    content = dialog.get_content_area()
    content.remove(settings)
    row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=12)
    row.pack_start(pane.widget, True, True, 0)
    row.pack_start(settings, False, False, 0)
    content.pack_start(row, True, True, 0)
    content.reorder_child(row, 0)
    row.show_all()
    config.connect("notify", pane.schedule)
    if pane.enabled:
        pane.schedule()
    else:
        pane.set_enabled(False)
    return pane


def _open_help_page(dialog, response) -> None:
    """Help opens the plug-in's own page (GIMP's would say its manual has no page for it)."""
    if response != Gtk.ResponseType.HELP:
        return
    dialog.stop_emission_by_name("response")
    page = os.path.join(PLUGIN_DIR, rules.HELP_PAGE)
    try:
        opened = webbrowser.open("file://" + page)
    except Exception:  # noqa: BLE001 - no browser: say where the page is instead
        opened = False
    if not opened:
        Gimp.message(f"Drip Matting's help is the page {page}: open it in a web browser.")
