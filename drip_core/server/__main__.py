"""`drip-server`: run the Drip Matting server."""
from __future__ import annotations

import argparse
import asyncio
import logging
import logging.handlers
import os
import signal
import sys

from drip_protocol import DEFAULT_MAX_PIXELS, ENGINES, ProtocolError, default_discovery_file, default_log_file


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="drip-server", description="Drip Matting inference server.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=0,
                   help="port (default: a free one, published in the discovery file)")
    p.add_argument("--discovery-file", default=None,
                   help=f"where to publish host/port/token (default: {default_discovery_file()})")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="engine for jobs that ask for 'auto' (default: auto = DRIP if a model is configured)")
    p.add_argument("--drip-model", default=None, help="DRIP model folder (default: from the user config)")
    p.add_argument("--idle-timeout", type=float, default=0.0,
                   help="shut down after this many idle seconds (0 = never)")
    p.add_argument("--log-file", default=None, help=f"log file (default: {default_log_file()})")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="largest image accepted, in pixels")
    p.add_argument("--max-queue", type=int, default=64,
                   help="jobs that may wait per device queue; more are refused with 'busy' (default: 64)")
    p.add_argument("--cache-mb", type=int, default=None,
                   help="memory for recent jobs' images and results, so reruns send only the mask and "
                        "re-solve only what changed (default: DRIP_MATTING_CACHE_MB or 512; 0 = off)")
    p.add_argument("--tls-cert", default=None, help="TLS certificate (required for non-loopback hosts)")
    p.add_argument("--tls-key", default=None, help="TLS private key")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without TLS")
    p.add_argument("--verbose", action="store_true", help="also log to stderr")
    return p.parse_args(argv)


def setup_logging(log_file: str, verbose: bool) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
    handlers: list[logging.Handler] = [logging.handlers.RotatingFileHandler(log_file, maxBytes=5 << 20,
                                                                            backupCount=2)]
    if verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def _serve(options) -> bool:
    """Run the server until it is stopped; False if a job's thread could not be waited for."""
    from .app import DripServer
    server = DripServer(options)
    if not await server.start():
        print(f"drip-server: another server already uses {options.discovery_file}", file=sys.stderr)
        return True
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, server.stop, sig.name)
        except (NotImplementedError, RuntimeError):
            pass
    print(f"drip-server: listening on {options.host}:{server.port} (log: {options.log_file})", flush=True)
    return await server.serve_until_stopped()


def main(argv=None) -> int:
    args = parse_args(argv)
    from .app import ServerOptions
    options = ServerOptions(
        host=args.host, port=args.port,
        discovery_file=os.path.abspath(args.discovery_file or default_discovery_file()),
        log_file=os.path.abspath(args.log_file or default_log_file()), engine=args.engine,
        drip_model=args.drip_model, idle_timeout=args.idle_timeout, max_pixels=args.max_pixels,
        max_queue=args.max_queue, cache_mb=args.cache_mb,
        tls_cert=args.tls_cert, tls_key=args.tls_key, insecure=args.insecure)
    setup_logging(options.log_file, args.verbose)
    try:
        finished = asyncio.run(_serve(options))
    except ProtocolError as exc:
        print(f"drip-server: {exc.user_text()}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"drip-server: cannot start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the signal handlers were installed
        return 0
    if not finished:
        # A job's thread ignored its cancellation: the interpreter would wait for it at exit
        # and it would then post to a closed event loop. The log is complete; leave now.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
