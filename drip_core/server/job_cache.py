"""The server's memory of recent jobs: their images and last results, LRU by bytes.

Entries are keyed by (token, image digest): a client that knows a digest but not the token
it was sent with gets nothing. The digest covers the image's format and size
(drip_protocol.image_digest), so a changed layer of the same size is a different entry.
Entries are immutable; a finished job replaces its entry (copy-on-write), so a result that
is still being sent is never modified. Accessed from the event loop and the device workers:
one lock.
"""
from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LastResult:
    """A finished job's result, and what a rerun needs to reuse it."""
    trimap: np.ndarray         # the trimap the server built (uint8 H x W)
    engine: str                # the name of the engine that ran
    result_depth: int
    foreground: np.ndarray     # the whole-image result as sent
    alpha: np.ndarray
    rerun_state: object = None  # the engine's record of the job for Engine.rerun (opaque here; its
                                # ``nbytes``, when it has one, counts what it holds beyond this result)
    result_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # a client's 'base_result' names it
    made_from: tuple | None = None  # what the trimap was built from (jobs.trimap_recipe): the same
                                    # mask and settings again reuse it, unbuilt

    @property
    def nbytes(self) -> int:
        state = getattr(self.rerun_state, "nbytes", 0)
        return self.trimap.nbytes + self.foreground.nbytes + self.alpha.nbytes + state


@dataclass(frozen=True)
class CachedImage:
    image: np.ndarray          # H x W x 3 at the job's depth
    held_bytes: int            # what keeping the image keeps alive (it may view a larger buffer)
    last: LastResult | None = None

    @property
    def nbytes(self) -> int:
        return self.held_bytes + (self.last.nbytes if self.last is not None else 0)


class JobCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max(0, int(max_bytes))
        self._entries: OrderedDict[tuple[str, str], CachedImage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def get(self, token: str, digest: str) -> CachedImage | None:
        with self._lock:
            entry = self._entries.get((token, digest))
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end((token, digest))
            self.hits += 1
            return entry

    def put(self, token: str, digest: str, entry: CachedImage) -> bool:
        """Store (or replace) an entry, evicting the least recently used ones to make room.

        An entry larger than the whole cache is stored without its result if the image fits,
        else not at all. Returns whether something was stored."""
        if entry.nbytes > self.max_bytes and entry.last is not None:
            entry = CachedImage(entry.image, entry.held_bytes)
        with self._lock:
            old = self._entries.pop((token, digest), None)
            if old is not None:
                self._bytes -= old.nbytes
            if entry.nbytes > self.max_bytes:
                return False
            while self._bytes + entry.nbytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes
                self.evictions += 1
            self._entries[(token, digest)] = entry
            self._bytes += entry.nbytes
            return True

    def stats(self) -> dict:
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes, "max_bytes": self.max_bytes,
                    "hits": self.hits, "misses": self.misses, "evictions": self.evictions}
