"""A fix, applied to the test clients only, for a stall in httpcore2 2.16.2's HTTP/2 client (the
transport under httpx2 and the Python `mcp` SDK client), so the e2e layer tests the gateway and not
that race.

The stall: every stream of one HTTP/2 connection reads the socket under one `_read_lock`, and a
stream waits for that lock *before* it looks again at the events other readers queued for it. When
stream B is queued behind stream G (a 2025-11-25 session's idle GET stream) and the reader ahead of
both delivers B's response and hands the lock to G, G blocks on the socket for its own events,
which may not come for minutes, while B's response sits in B's queue. Seen through Envoy: the
access log shows both `tools/list` answers sent in full within 6 ms (`out=3080`), and the client
waits out its 45 s guard. It needs a long-lived idle stream next to concurrent requests, which is
why only the legacy SDK client over HTTP/2 hit it (the SDK's output-schema check sends two
`tools/list` at once after a concurrent pair of `tools/call`).

The fix keeps httpcore2's logic and only stops a waiter from waiting blind: it waits for the lock
at most `POLL_S` at a time and looks at its queue between tries. Only the wait for the lock is
bounded, never a socket read (cancelling a read would poison the connection).
"""
from __future__ import annotations

import anyio
import httpcore2._async.http2 as h2_async

POLL_S = 0.05


async def _receive_stream_event(self, request, stream_id):
    while not self._events.get(stream_id):
        acquired = False
        with anyio.move_on_after(POLL_S):
            await self._read_lock.__aenter__()
            acquired = True
        if not acquired:
            continue
        try:
            if not self._events.get(stream_id):
                await self._receive_events(request, stream_id)
        finally:
            await self._read_lock.__aexit__(None, None, None)
        await self._write_outgoing_data(request)
    event = self._events[stream_id].pop(0)
    if isinstance(event, h2_async.h2.events.StreamReset):
        raise h2_async.RemoteProtocolError(event)
    return event


def install() -> None:
    """Replace AsyncHTTP2Connection._receive_stream_event (idempotent)."""
    h2_async.AsyncHTTP2Connection._receive_stream_event = _receive_stream_event
