"""Where batch inputs and outputs live: a local folder, or a URI that pyarrow can open.

Local paths go through ``os`` directly (no pyarrow needed). Anything with a scheme
(``s3://``, ``gs://``, ``hdfs://``, ``file://``) goes through ``pyarrow.fs``, which is what Ray
reads remote data with; it comes with the ``cluster`` extra.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from functools import lru_cache


def is_uri(path: str) -> bool:
    return "://" in str(path)


@lru_cache(maxsize=16)
def _filesystem(scheme: str, host: str):
    try:
        from pyarrow import fs as pafs
    except ImportError:
        raise RuntimeError(f"{scheme}:// paths need pyarrow (pip install 'drip-matting[cluster]')") from None
    # One filesystem per bucket/host: building an S3 or GCS client resolves credentials (slow).
    root = "file:///" if scheme == "file" else f"{scheme}://{host}/"
    return pafs.FileSystem.from_uri(root)[0]


def _split(uri: str):
    """(pyarrow filesystem, path inside it) for a URI."""
    scheme, _, rest = uri.partition("://")
    host, _, tail = rest.partition("/")
    if scheme == "file":
        return _filesystem("file", ""), rest
    if scheme in ("hdfs", "viewfs"):
        return _filesystem(scheme, host), "/" + tail
    # object stores (s3, gs, abfs ...): pyarrow's paths start with the bucket
    return _filesystem(scheme, host), rest


def join(folder: str, name: str) -> str:
    if is_uri(folder):
        return folder.rstrip("/") + "/" + name
    return os.path.join(folder, name)


def is_dir(folder: str) -> bool:
    if not is_uri(folder):
        return os.path.isdir(folder)
    from pyarrow import fs as pafs
    fs, path = _split(folder)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def list_files(folder: str) -> list[str]:
    """File names (not paths) directly in ``folder``, sorted."""
    if not is_uri(folder):
        return sorted(e.name for e in os.scandir(folder) if e.is_file())
    from pyarrow import fs as pafs
    fs, path = _split(folder)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.File)


def size(path: str) -> int | None:
    """Size in bytes, None when the file does not exist."""
    if not is_uri(path):
        try:
            return os.stat(path).st_size
        except OSError:
            return None
    from pyarrow import fs as pafs
    fs, p = _split(path)
    info = fs.get_file_info(p)
    return info.size if info.type == pafs.FileType.File else None


def read_tail(path: str, n: int) -> bytes:
    if not is_uri(path):
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - n))
            return f.read()
    fs, p = _split(path)
    with fs.open_input_file(p) as f:
        f.seek(max(0, f.size() - n))
        return f.read()


@contextlib.contextmanager
def local_copy(path: str):
    """A local file name for ``path``: itself when local, a temporary download otherwise."""
    if not is_uri(path):
        yield path
        return
    fs, p = _split(path)
    suffix = os.path.splitext(p)[1]
    fd, tmp = tempfile.mkstemp(prefix="drip-in-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out, fs.open_input_stream(p) as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        yield tmp
    finally:
        os.unlink(tmp)
