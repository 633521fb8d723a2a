"""The benchmarks' HTTP/1.1 client: pre-encoded keep-alive requests over plain asyncio streams.

A load generator shares the two cores with what it measures, so it does as little as it can:
each request is encoded once (:func:`request_bytes`) and sent as bytes, and a response is read as its
head and a Content-Length body (:func:`exchange`), parsed only after the run.  Used by
``bench.serve`` and the soak's request load (``bench.soak_load``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


def request_bytes(host: str, path: str, body: dict[str, Any] | None) -> bytes:
    """One pre-encoded HTTP/1.1 keep-alive request."""
    if not body:
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    data = json.dumps(body, separators=(",", ":")).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n")
    return head.encode() + data


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> tuple[bytes, bytes]:
    """Send one request, read one response: (head, body).  Only Content-Length bodies (what uvicorn sends)."""
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    at = head.find(b"content-length:")
    if at < 0:
        at = head.lower().find(b"content-length:")
    n = int(head[at + 15:head.index(b"\r\n", at)]) if at >= 0 else 0
    return head, await reader.readexactly(n) if n else b""
