"""Write outputs so that a reader (or a rerun) never sees half a file.

Local files: write a temporary file in the same folder, then rename it over the final name
(``os.replace`` is atomic on POSIX within one file system). Two attempts at the same image
(a Ray retry after a worker died) each use their own temporary name, and the last rename
wins with identical bytes, so the output exists exactly once. A worker killed mid-write
leaves only a temporary file, which the batch driver removes at the end of its run.

Object stores (s3://, gs://) publish an object only when its upload completes, so there the
final name is written directly.
"""
from __future__ import annotations

import os
import uuid

from drip_protocol.discovery import write_atomically

from . import storage

TEMP_MARKER = ".drip-tmp-"


def temp_name(path: str) -> str:
    folder, name = os.path.split(path)
    # hidden and without an image suffix: never listed as an input or taken for an output
    return os.path.join(folder, f".{name}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def write_bytes(path: str, data: bytes) -> None:
    if storage.is_uri(path):
        _write_uri(path, data)
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomically(path, data, temp_name(path))


def _write_uri(path: str, data: bytes) -> None:
    fs, p = storage._split(path)
    parent = p.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    if fs.type_name == "local":  # file:// through pyarrow: same temp + rename as above
        tmp = temp_name(p)
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        fs.move(tmp, p)
        return
    with fs.open_output_stream(p) as out:
        out.write(data)


def remove_stale_temps(folder: str) -> int:
    """Delete temporary files left by killed writers in a local ``folder``; returns how many."""
    if storage.is_uri(folder) or not os.path.isdir(folder):
        return 0
    removed = 0
    for entry in os.scandir(folder):
        if entry.name.startswith(".") and TEMP_MARKER in entry.name:
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed
