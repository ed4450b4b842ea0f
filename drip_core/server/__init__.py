"""The Drip Matting server: asyncio front end, one FIFO worker per device."""
from .app import DripServer, ServerOptions

__all__ = ["DripServer", "ServerOptions"]
