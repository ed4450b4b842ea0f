"""Drip Matting installer: server venv, GIMP plug-in, model import (see installer/install.py)."""
