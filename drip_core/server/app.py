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

from .. import __version__
from ..buffers import to_array
from ..config import configured_drip_model
from ..engines.registry import available_engines, intended_engine
from drip_protocol import (PREFIX, PROTOCOL_VERSION, DEFAULT_MAX_PIXELS, ProtocolError, check_token, decode_header,
                        encode_frame, max_job_payload, parse_prefix, read_discovery, validate_job, write_discovery)
from ..settings import settings
from .job_cache import JobCache
from .jobs import DeviceWorker, Job
from .single_instance import InstanceLock

log = logging.getLogger("drip.server")

HELLO_TIMEOUT = 10.0       # seconds a new connection has to authenticate
HEARTBEAT_INTERVAL = 1.0   # progress frames at least this often while a job is queued or running
MIN_TRANSFER_RATE = 1 << 20  # bytes/s a client must sustain while sending a payload (slowloris guard)


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
    cache_mb: int | None = None      # the image cache's size; None: DRIP_MATTING_CACHE_MB or its default; 0: off


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
        # Hex, not url-safe base64: a token starting with '-' reads as an option on a command line (--token -x...).
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
            raise ProtocolError("bad_request", f"binding to {o.host} (not loopback) exposes the server to the "
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
        self._server = await asyncio.start_server(self._handle, self.opts.host, self.opts.port, limit=1 << 16, **tls)
        self.port = self._server.sockets[0].getsockname()[1]
        for name in ("cpu", "accelerator"):
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

    # --- one connection ----------------------------------------------------------------

    def _worker_for(self, engine: str) -> DeviceWorker:
        """The queue of the device the engine will run on."""
        return self.workers["accelerator" if intended_engine(engine, self.drip_model) == "drip" else "cpu"]

    async def _read_frame(self, reader: asyncio.StreamReader, timeout: float | None, allow_job: bool):
        max_payload = max_job_payload(self.opts.max_pixels) if allow_job else 0
        prefix = await asyncio.wait_for(reader.readexactly(PREFIX.size), timeout)
        header_len, payload_len = parse_prefix(prefix, max_payload)
        header = decode_header(await asyncio.wait_for(reader.readexactly(header_len), HELLO_TIMEOUT))
        if header["type"] != "job":
            if payload_len:
                raise ProtocolError("bad_frame", f"'{header['type']}' frames carry no payload")
            return header, None
        job = dict(validate_job(header, self.opts.max_pixels), type="job")
        if payload_len != job["payload_len"]:
            raise ProtocolError("bad_request", f"payload is {payload_len} bytes; a {job['width']}x{job['height']} "
                                               f"{job['image_format']}+{job['mask_format']} job needs {job['payload_len']}")
        payload = await asyncio.wait_for(reader.readexactly(payload_len),
                                         HELLO_TIMEOUT + payload_len / MIN_TRANSFER_RATE)
        return job, payload

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.last_activity = time.monotonic()
        send_lock = asyncio.Lock()

        async def send(header: dict, payload=b"") -> None:
            async with send_lock:
                writer.write(encode_frame(header, payload))
                for part in payload if isinstance(payload, list) else (payload,):
                    if len(part):
                        writer.write(part)
                await writer.drain()

        current: Job | None = None
        pump: asyncio.Task | None = None
        try:
            header, _ = await self._read_frame(reader, HELLO_TIMEOUT, allow_job=False)
            if header["type"] != "hello":
                raise ProtocolError("bad_request", "the first message must be 'hello'")
            if not check_token(self.token, header.get("token")):
                log.warning("rejected a connection with a wrong or missing token")
                raise ProtocolError("auth_failed", "wrong or missing token")
            token = header["token"]
            if header.get("proto") != PROTOCOL_VERSION:
                raise ProtocolError("version_mismatch", f"client speaks protocol {header.get('proto')!r}, "
                                                        f"this server speaks {PROTOCOL_VERSION}")
            await send({"type": "welcome", "proto": PROTOCOL_VERSION, "server_version": __version__,
                        "engines": available_engines(self.drip_model), "default_engine": self.opts.engine,
                        "max_pixels": self.opts.max_pixels, "log_file": self.opts.log_file, "pid": os.getpid(),
                        "image_cache": self.cache.enabled})
            while True:
                try:
                    header, payload = await self._read_frame(reader, None, allow_job=True)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break  # the client went away: cancel below
                self.last_activity = time.monotonic()
                kind = header.get("type")
                if kind == "job":
                    if current is not None and not pump.done():
                        await send(ProtocolError("busy", "this connection already has a job running")
                                   .to_header(header["id"]))
                        continue
                    try:
                        current, pump = await self._start_job(header, payload, send, token)
                    except ProtocolError as exc:
                        if exc.code not in ("busy", "image_not_cached"):
                            raise
                        await send(exc.to_header(header["id"]))  # the connection stays usable
                elif kind == "cancel":
                    if current is not None and header.get("id") == current.id:
                        current.cancelled.set()
                elif kind == "ping":
                    await send({"type": "pong"})
                elif kind == "status":
                    await send({"type": "status", "queues": {n: w.position() for n, w in self.workers.items()},
                                "jobs_done": sum(w.jobs_done for w in self.workers.values()),
                                "connections": self.connections, "images_received": self.images_received,
                                "images_from_cache": self.images_from_cache, "image_cache": self.cache.stats()})
                elif kind == "shutdown":
                    await send({"type": "bye"})
                    self.stop()
                    break
                else:
                    raise ProtocolError("bad_request", f"unknown message type '{kind}'")
        except ProtocolError as exc:
            exc.log_file = self.opts.log_file
            await self._try_send(send, exc.to_header())
        except asyncio.TimeoutError:
            await self._try_send(send, ProtocolError("timeout", "the client was too slow").to_header())
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:  # noqa: BLE001 - a bug in one connection must not take the server down
            log.exception("connection handler crashed")
            await self._try_send(send, ProtocolError("internal", "internal server error").to_header())
        finally:
            if current is not None:
                current.cancelled.set()  # a client that disconnects cancels its job
                if self._worker_for(current.spec["engine"]).running is not current:
                    current.release()    # queued or finished: it will never run, free its pixels now
            if pump is not None and not pump.done():
                # The pump drains the job's remaining events; it ends at the job's final message.
                try:
                    await asyncio.wait_for(asyncio.shield(pump), 0.1)
                except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                    pass
            self.connections -= 1
            self.last_activity = time.monotonic()
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    @staticmethod
    async def _try_send(send, header: dict) -> None:
        try:
            await asyncio.wait_for(send(header), 2.0)
        except Exception:  # noqa: BLE001 - the peer may be gone already
            pass

    async def _start_job(self, spec: dict, payload: bytes, send, token: str = ""):
        if spec["engine"] == "auto":  # the job leaves the choice to the server's --engine
            spec = dict(spec, engine=self.opts.engine)
        worker = self._worker_for(spec["engine"])
        if worker.queue.qsize() >= self.opts.max_queue:
            log.warning("job %s refused: the %s queue holds %d jobs", spec["id"], worker.name, worker.queue.qsize())
            raise ProtocolError("busy", f"the {worker.name} queue is full ({worker.queue.qsize()} jobs waiting)")
        w, h = spec["width"], spec["height"]
        mask_len = w * h * (2 if spec["mask_format"] == "y16" else 1)
        view = memoryview(payload)  # no copies of a large layer
        mask = to_array(view[-mask_len:], spec["mask_format"], w, h)
        if spec["image_cached"]:  # the job named its image by digest: take it from the cache
            cached = self.cache.get(token, spec["image_digest"]) if self.cache.enabled else None
            if cached is None:
                log.info("job %s: image %s… not cached; the client will send it", spec["id"], spec["image_digest"][:12])
                raise ProtocolError("image_not_cached", "the server does not hold this image (any more)")
            job = Job(spec=spec, image=cached.image, mask=mask, loop=asyncio.get_running_loop(), token=token,
                      cached=cached)
            self.images_from_cache += 1
        else:
            image = to_array(view[:-mask_len], spec["image_format"], w, h)
            job = Job(spec=spec, image=image, mask=mask, loop=asyncio.get_running_loop(), token=token,
                      held_bytes=len(payload))
            self.images_received += 1
        ahead = worker.submit(job)
        # logged before any await, so the log's order of acceptances is the queue's order
        log.info("job %s accepted: %dx%d %s, %s, image %s, queue %s position %d", job.id, w, h, spec["image_format"],
                 spec["trimap_source"], "from the cache" if job.cached is not None else "sent", worker.name, ahead)
        try:
            await send({"type": "accepted", "id": job.id, "position": ahead, "queue": worker.name})
        except BaseException:
            job.cancelled.set()  # the client is gone before it learnt of its job: never run it
            if worker.running is not job:
                job.release()
            raise
        return job, asyncio.get_running_loop().create_task(self._pump(job, worker, send))

    async def _pump(self, job: Job, worker: DeviceWorker, send) -> None:
        """Forward the job's events to the client, with heartbeats while it waits or runs."""
        last = {"type": "progress", "id": job.id, "fraction": 0.0, "stage": "queued", "message": ""}
        while True:
            try:
                header, payload = await asyncio.wait_for(job.events.get(), HEARTBEAT_INTERVAL)
            except asyncio.TimeoutError:
                if worker.running is not job:
                    pos = worker.queue.qsize()
                    last = dict(last, stage="queued", message=f"waiting in queue ({pos} ahead at most)")
                try:
                    await send(dict(last, heartbeat=True))
                except (ConnectionError, RuntimeError):
                    job.cancelled.set()
                    return
                continue
            if header["type"] == "progress":
                last = header
            try:
                await send(header, payload)
            except (ConnectionError, RuntimeError):
                job.cancelled.set()
                return
            if header["type"] in ("result", "error"):
                job.release()
                return
