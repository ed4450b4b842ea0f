"""One client connection: the handshake, then each message handled by its own method.

A connection runs at most one job at a time; its events (progress, result, error) are pumped
to the client with heartbeats while the job waits or runs. A client that goes away cancels its job.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

from drip_protocol import (
    PREFIX,
    PROTOCOL_VERSION,
    JobSpec,
    ProtocolError,
    Stage,
    check_token,
    decode_header,
    encode_frame,
    max_job_payload,
    parse_prefix,
)

from .. import __version__
from ..buffers import to_array
from ..engines import available_engines, requested_engine
from .jobs import DeviceWorker, Job

log = logging.getLogger("drip.server")

HELLO_TIMEOUT = 10.0       # seconds a new connection has to authenticate
HEARTBEAT_INTERVAL = 1.0   # progress frames at least this often while a job is queued or running
MIN_TRANSFER_RATE = 1 << 20  # bytes/s a client must sustain while sending a payload (slowloris guard)


class Session:
    """``server``: the DripServer (its options, token, workers, cache and counters)."""

    def __init__(self, server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server, self.reader, self.writer = server, reader, writer
        self.send_lock = asyncio.Lock()
        self.token = ""
        self.current: Job | None = None
        self.pump: asyncio.Task | None = None
        self.open = True
        self.handlers = {"cancel": self.on_cancel, "ping": self.on_ping, "status": self.on_status,
                         "shutdown": self.on_shutdown}

    async def serve(self) -> None:
        """The handshake, then messages until the client leaves; every failure is one error frame."""
        try:
            await self.handshake()
            while self.open:
                try:
                    header, payload = await self.read_frame(None, allow_job=True)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break  # the client went away: its job is cancelled in close()
                self.server.last_activity = time.monotonic()
                await self.dispatch(header, payload)
        except ProtocolError as exc:
            exc.log_file = self.server.opts.log_file
            await self.try_send(exc.to_header())
        except asyncio.TimeoutError:
            await self.try_send(ProtocolError("timeout", "the client was too slow", hint="Run again.")
                                .to_header())
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:  # noqa: BLE001 - a bug in one connection must not take the server down
            log.exception("connection handler crashed")
            await self.try_send(ProtocolError("internal", "internal server error").to_header())
        finally:
            await self.close()

    async def handshake(self) -> None:
        header, _ = await self.read_frame(HELLO_TIMEOUT, allow_job=False)
        if header["type"] != "hello":
            raise ProtocolError("bad_request", "the first message must be 'hello'")
        if not check_token(self.server.token, header.get("token")):
            log.warning("rejected a connection with a wrong or missing token")
            raise ProtocolError("auth_failed", "wrong or missing token")
        self.token = header["token"]
        if header.get("proto") != PROTOCOL_VERSION:
            raise ProtocolError("version_mismatch", f"client speaks protocol {header.get('proto')!r}, "
                                                    f"this server speaks {PROTOCOL_VERSION}")
        opts = self.server.opts
        await self.send({"type": "welcome", "proto": PROTOCOL_VERSION, "server_version": __version__,
                         "engines": available_engines(self.server.drip_model), "default_engine": opts.engine,
                         "max_pixels": opts.max_pixels, "log_file": opts.log_file, "pid": os.getpid(),
                         "image_cache": self.server.cache.enabled})

    async def dispatch(self, header, payload) -> None:
        if isinstance(header, JobSpec):
            await self.on_job(header, payload)
            return
        handler = self.handlers.get(header.get("type"))
        if handler is None:
            raise ProtocolError("bad_request", f"unknown message type '{header.get('type')}'")
        await handler(header)

    # --- the messages ------------------------------------------------------------------

    async def on_job(self, spec: JobSpec, payload: bytes) -> None:
        if self.current is not None and not self.pump.done():
            await self.send(ProtocolError("busy",
                                          "this connection already has a job running").to_header(spec.id))
            return
        try:
            self.current, self.pump = await self.start_job(spec, payload)
        except ProtocolError as exc:
            if exc.code not in ("busy", "image_not_cached"):
                raise
            await self.send(exc.to_header(spec.id))  # the connection stays usable

    async def on_cancel(self, header: dict) -> None:
        if self.current is not None and header.get("id") == self.current.id:
            self.current.cancelled.set()

    async def on_ping(self, header: dict) -> None:
        await self.send({"type": "pong"})

    async def on_status(self, header: dict) -> None:
        server = self.server
        await self.send({"type": "status", "queues": {n: w.position() for n, w in server.workers.items()},
                         "jobs_done": sum(w.jobs_done for w in server.workers.values()),
                         "connections": server.connections, "images_received": server.images_received,
                         "images_from_cache": server.images_from_cache, "image_cache": server.cache.stats()})

    async def on_shutdown(self, header: dict) -> None:
        await self.send({"type": "bye"})
        self.server.stop()
        self.open = False

    # --- jobs ----------------------------------------------------------------------------

    async def start_job(self, spec: JobSpec, payload: bytes):
        """Queue the job on its device's worker; (job, the task that pumps its events)."""
        server = self.server
        spec = spec.replace(engine=requested_engine(spec.engine, server.opts.engine))
        worker = server.worker_for(spec.engine)
        if worker.queue.qsize() >= server.opts.max_queue:
            log.warning("job %s refused: the %s queue holds %d jobs", spec.id, worker.name,
                        worker.queue.qsize())
            raise ProtocolError("busy",
                                f"the {worker.name} queue is full ({worker.queue.qsize()} jobs waiting)")
        job = self.make_job(spec, payload)
        ahead = worker.submit(job)
        # logged before any await, so the log's order of acceptances is the queue's order
        log.info("job %s accepted: %dx%d %s, %s, image %s, queue %s position %d", job.id, spec.width,
                 spec.height, spec.image_format, spec.trimap_source,
                 "from the cache" if job.cached is not None else "sent", worker.name, ahead)
        try:
            await self.send({"type": "accepted", "id": job.id, "position": ahead, "queue": worker.name})
        except BaseException:
            job.cancelled.set()  # the client is gone before it learnt of its job: never run it
            if worker.running is not job:
                job.release()
            raise
        return job, asyncio.get_running_loop().create_task(self.pump_events(job, worker))

    def make_job(self, spec: JobSpec, payload: bytes) -> Job:
        """The job's image (a view of the payload, or the cached one its digest names) and mask."""
        server, loop = self.server, asyncio.get_running_loop()
        w, h = spec.width, spec.height
        view = memoryview(payload)  # no copies of a large layer
        mask = to_array(view[spec.image_len:], spec.mask_format, w, h)
        if not spec.image_cached:
            server.images_received += 1
            return Job(spec=spec, image=to_array(view[:spec.image_len], spec.image_format, w, h), mask=mask,
                       loop=loop, token=self.token, held_bytes=len(payload))
        cached = server.cache.get(self.token, spec.image_digest) if server.cache.enabled else None
        if cached is None:
            log.info("job %s: image %s… not cached; the client will send it", spec.id, spec.image_digest[:12])
            raise ProtocolError("image_not_cached", "the server does not hold this image (any more)")
        server.images_from_cache += 1
        return Job(spec=spec, image=cached.image, mask=mask, loop=loop, token=self.token, cached=cached)

    async def pump_events(self, job: Job, worker: DeviceWorker) -> None:
        """Forward the job's events to the client, with heartbeats while it waits or runs."""
        last = {"type": "progress", "id": job.id, "fraction": 0.0, "stage": Stage.QUEUED.value, "message": ""}
        while True:
            try:
                header, payload = await asyncio.wait_for(job.events.get(), HEARTBEAT_INTERVAL)
            except asyncio.TimeoutError:
                if worker.running is not job:
                    pos = worker.queue.qsize()
                    last = dict(last, stage=Stage.QUEUED.value,
                                message=f"waiting in queue ({pos} ahead at most)")
                header, payload = dict(last, heartbeat=True), b""
            else:
                if header["type"] == "progress":
                    last = header
            try:
                await self.send(header, payload)
            except (ConnectionError, RuntimeError):
                job.cancelled.set()
                return
            if header["type"] in ("result", "error"):
                job.release()
                return

    # --- frames ----------------------------------------------------------------------------

    async def read_frame(self, timeout: float | None, allow_job: bool):
        """(header, None) for a message, (JobSpec, payload) for a job."""
        max_pixels = self.server.opts.max_pixels
        prefix = await asyncio.wait_for(self.reader.readexactly(PREFIX.size), timeout)
        header_len, payload_len = parse_prefix(prefix, max_job_payload(max_pixels) if allow_job else 0)
        header = decode_header(await asyncio.wait_for(self.reader.readexactly(header_len), HELLO_TIMEOUT))
        if header["type"] != "job":
            if payload_len:
                raise ProtocolError("bad_frame", f"'{header['type']}' frames carry no payload")
            return header, None
        spec = JobSpec.from_header(header, max_pixels)
        if payload_len != spec.payload_len:
            raise ProtocolError("bad_request",
                                f"payload is {payload_len} bytes; a {spec.width}x{spec.height} "
                                f"{spec.image_format}+{spec.mask_format} job needs {spec.payload_len}")
        payload = await asyncio.wait_for(self.reader.readexactly(payload_len),
                                         HELLO_TIMEOUT + payload_len / MIN_TRANSFER_RATE)
        return spec, payload

    async def send(self, header: dict, payload=b"") -> None:
        async with self.send_lock:
            self.writer.write(encode_frame(header, payload))
            for part in payload if isinstance(payload, list) else (payload,):
                if len(part):
                    self.writer.write(part)
            await self.writer.drain()

    async def try_send(self, header: dict) -> None:
        try:
            await asyncio.wait_for(self.send(header), 2.0)
        except Exception:  # noqa: BLE001 - the peer may be gone already
            pass

    async def close(self) -> None:
        if self.current is not None:
            self.current.cancelled.set()  # a client that disconnects cancels its job
            if self.server.worker_for(self.current.spec.engine).running is not self.current:
                self.current.release()    # queued or finished: it will never run, free its pixels now
        if self.pump is not None and not self.pump.done():
            # The pump drains the job's remaining events; it ends at the job's final message.
            try:
                await asyncio.wait_for(asyncio.shield(self.pump), 0.1)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                pass
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001
            pass
