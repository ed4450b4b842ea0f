"""The asyncio server: handshake, token, jobs, progress heartbeats, cancel, idle shutdown."""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import ssl
import time
from dataclasses import dataclass

from drip_protocol import DEFAULT_MAX_PIXELS, PROTOCOL_VERSION, ProtocolError, read_discovery, write_discovery

from .. import __version__
from ..config import configured_drip_model
from ..engines import QUEUES, queue_for
from ..settings import settings
from .job_cache import JobCache
from .jobs import DeviceWorker
from .session import HELLO_TIMEOUT, Session
from .single_instance import InstanceLock

log = logging.getLogger("drip.server")


@dataclass
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 0
    discovery_file: str = ""
    log_file: str | None = None
    engine: str = "auto"
    drip_model: str | None = None
    idle_timeout: float = 0.0        # 0 = never
    max_pixels: int = DEFAULT_MAX_PIXELS
    tls_cert: str | None = None
    tls_key: str | None = None
    insecure: bool = False
    token: str | None = None         # for tests; normally generated
    max_queue: int = 64              # jobs waiting per device queue; more get 'busy' (bounds memory)
    cache_mb: int | None = None      # the image cache's size; None: DRIP_MATTING_CACHE_MB or its default;
                                     # 0: off


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DripServer:
    def __init__(self, options: ServerOptions):
        self.opts = options
        # Hex, not url-safe base64: a token starting with '-' reads as an option on a command line
        # (--token -x...).
        self.token = options.token or secrets.token_hex(32)
        self.drip_model = options.drip_model or configured_drip_model()
        self.workers: dict[str, DeviceWorker] = {}
        self.connections = 0
        self.last_activity = time.monotonic()
        self.stopped = asyncio.Event()
        self.port: int | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task] = []
        self._lock = InstanceLock(options.discovery_file + ".lock")
        self.ssl_context = self._make_ssl_context()
        cache_mb = options.cache_mb if options.cache_mb is not None else settings().cache_mb
        self.cache = JobCache(cache_mb << 20)
        self.images_received = self.images_from_cache = 0  # how jobs got their pixels (tests, benchmarks)

    def _make_ssl_context(self) -> ssl.SSLContext | None:
        o = self.opts
        if o.tls_cert or o.tls_key:
            if not (o.tls_cert and o.tls_key):
                raise ProtocolError("bad_request", "--tls-cert and --tls-key go together")
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(o.tls_cert, o.tls_key)
            return ctx
        if not is_loopback(o.host) and not o.insecure:
            raise ProtocolError("bad_request",
                                f"binding to {o.host} (not loopback) exposes the server to the "
                                "network: give --tls-cert/--tls-key, or --insecure if you must")
        return None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> bool:
        """Bind, then publish the discovery file. False if another server owns the file."""
        if not self._lock.acquire():
            log.info("another server already owns %s; exiting", self.opts.discovery_file)
            return False
        loop = asyncio.get_running_loop()
        tls = {"ssl": self.ssl_context, "ssl_handshake_timeout": HELLO_TIMEOUT} if self.ssl_context else {}
        self._server = await asyncio.start_server(self._handle, self.opts.host, self.opts.port, limit=1 << 16,
                                                  **tls)
        self.port = self._server.sockets[0].getsockname()[1]
        for name in QUEUES:
            worker = DeviceWorker(name, self.drip_model, self.opts.log_file, self.cache)
            self.workers[name] = worker
            self._tasks.append(loop.create_task(worker.run()))
        if self.opts.idle_timeout > 0:
            self._tasks.append(loop.create_task(self._idle_watchdog()))
        write_discovery(self.opts.discovery_file, {
            "host": self.opts.host, "port": self.port, "token": self.token, "pid": os.getpid(),
            "version": __version__, "proto": PROTOCOL_VERSION, "tls": self.ssl_context is not None,
            # local clients verify a self-signed server against its own certificate
            "tls_cert": os.path.abspath(self.opts.tls_cert) if self.ssl_context else None,
            "log_file": self.opts.log_file,
        })
        log.info("listening on %s:%d (pid %d, engine %s, drip model %s)", self.opts.host, self.port,
                 os.getpid(), self.opts.engine, self.drip_model or "none")
        return True

    async def serve_until_stopped(self) -> None:
        await self.stopped.wait()
        await self.close()

    def stop(self) -> None:
        self.stopped.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        for worker in self.workers.values():
            if worker.running is not None:
                worker.running.cancelled.set()
            worker.shutdown()
        self._remove_discovery_file()
        self._lock.release()
        log.info("server stopped")

    def _remove_discovery_file(self) -> None:
        # Only our own record: a newer server may have replaced it.
        record = read_discovery(self.opts.discovery_file)
        if record is not None and record.get("pid") == os.getpid() and record.get("port") == self.port:
            try:
                os.unlink(self.opts.discovery_file)
            except OSError:
                pass

    async def _idle_watchdog(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.opts.idle_timeout / 4))
            busy = self.connections > 0 or any(w.position() for w in self.workers.values())
            if busy:
                self.last_activity = time.monotonic()
            elif time.monotonic() - self.last_activity > self.opts.idle_timeout:
                log.info("idle for %.0f s; shutting down", self.opts.idle_timeout)
                self.stop()
                return

    # --- connections ---------------------------------------------------------------------

    def worker_for(self, engine: str) -> DeviceWorker:
        """The queue of the device the engine will run on."""
        return self.workers[queue_for(engine, self.drip_model)]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.last_activity = time.monotonic()
        try:
            await Session(self, reader, writer).serve()
        finally:
            self.connections -= 1
            self.last_activity = time.monotonic()
