#!/usr/bin/env python3
"""Drip Matting installer: ``python installer/install.py`` (``--help`` for the options).

This file only checks the Python version (in syntax every Python 3 can read, so an old
Python gets a clear message instead of a SyntaxError) and hands over to installer/cli.py.
Everything up to the virtual environment uses the standard library only.
"""
import os
import sys

MIN = (3, 11)

if sys.version_info[:2] < MIN:
    sys.stderr.write("Drip Matting needs Python %d.%d or newer; this is Python %d.%d (%s).\n"
                     "Install a newer Python (https://www.python.org/downloads/) and run:\n"
                     "  python3.%d installer/install.py\n"
                     % (MIN[0], MIN[1], sys.version_info[0], sys.version_info[1], sys.executable, MIN[1]))
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Run as a script, Python puts installer/ first on sys.path, where venv.py would shadow the
# standard library's venv: put the folder holding the installer package there instead.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from installer.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
