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

STOP_WAIT = 20.0  # seconds a stopping server gives its running jobs to notice their cancellation


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
        self._connections: set[asyncio.Task] = set()  # one handler task per open connection
        self.stop_reason = ""
        self._lock = InstanceLock(options.discovery_file + ".lock")
        self.ssl_context = self._make_ssl_context()
        cache_mb = options.cache_mb if options.cache_mb is not None else settings().cache_mb
        self.cache = JobCache(cache_mb << 20)
        self.images_received = self.images_from_cache = 0  # how jobs got their pixels (tests, benchmarks)

    def _make_ssl_context(self) -> ssl.SSLContext | None:
        o = self.opts
        if o.tls_cert or o.tls_key:
            if not (o.tls_cert and o.tls_key):
                raise ProtocolError("bad_request", "--tls-cert and --tls-key go together", hint="")
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(o.tls_cert, o.tls_key)
            return ctx
        if not is_loopback(o.host) and not o.insecure:
            raise ProtocolError("bad_request",
                                f"binding to {o.host} (not loopback) exposes the server to the "
                                "network: give --tls-cert/--tls-key, or --insecure if you must", hint="")
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

    async def serve_until_stopped(self) -> bool:
        """Serve until stop(), then close; False if a job's thread was still running (see close)."""
        await self.stopped.wait()
        return await self.close()

    def stop(self, reason: str = "") -> None:
        if not self.stopped.is_set():
            self.stop_reason = reason
        self.stopped.set()

    async def close(self) -> bool:
        """Stop in order, so nothing runs after the event loop is gone: no new connections, every
        job cancelled, the worker threads left idle, then the connections and our tasks ended.
        False if a running job ignored its cancellation for STOP_WAIT seconds: its thread is
        still alive, and the caller must exit without waiting for it."""
        if self._server is not None:
            self._server.close()
        running = self._cancel_jobs()
        idle = await self._wait_for_workers(STOP_WAIT)
        for worker in self.workers.values():
            worker.shutdown()
        await self._end_tasks(list(self._connections))  # each connection sends its job's last message
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]  # workers, pumps
        await self._end_tasks(rest)
        self._remove_discovery_file()
        self._lock.release()
        cancelled = f"; {running} running job{'s' if running != 1 else ''} cancelled" if running else ""
        log.info("server stopped (%s%s)", self.stop_reason or "stop requested", cancelled)
        return idle

    def _cancel_jobs(self) -> int:
        """Cancel every job; queued ones are answered at once. The number that were running."""
        running = 0
        for worker in self.workers.values():
            if worker.running is not None:
                worker.running.cancelled.set()
                running += 1
            while not worker.queue.empty():
                job = worker.queue.get_nowait()
                job.cancelled.set()
                job.post(ProtocolError("cancelled", "the server is stopping").to_header(job.id))
        return running

    async def _wait_for_workers(self, timeout: float) -> bool:
        """Wait until no worker thread runs a job (a cancelled job posts its last message first)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(w.running is not None for w in self.workers.values()):
            if loop.time() > deadline:
                log.warning("a job did not stop within %.0f s of its cancellation; exiting without it",
                            timeout)
                return False
            await asyncio.sleep(0.02)
        return True

    @staticmethod
    async def _end_tasks(tasks: list[asyncio.Task]) -> None:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

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
                self.stop(f"idle for {self.opts.idle_timeout:.0f} s")
                return

    # --- connections ---------------------------------------------------------------------

    def worker_for(self, engine: str) -> DeviceWorker:
        """The queue of the device the engine will run on."""
        return self.workers[queue_for(engine, self.drip_model)]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        self.connections += 1
        self.last_activity = time.monotonic()
        try:
            await Session(self, reader, writer).serve()
        except asyncio.CancelledError:
            # close() ends open connections this way. A handler task must not end cancelled:
            # asyncio (3.11) would log that as an unhandled exception of the connection.
            if not self.stopped.is_set():
                raise
        finally:
            self._connections.discard(task)
            self.connections -= 1
            self.last_activity = time.monotonic()
