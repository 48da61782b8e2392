"""HTTP/1.1 framing guards in front of the prediction API: ambiguous bodies refused, slow senders dropped.

uvicorn's h11 protocol takes a request carrying both Content-Length and Transfer-Encoding by its chunked
framing and keeps the connection open, so bytes a Content-Length proxy counts as body are read as a second,
unseen request (request smuggling; RFC 9112 section 6.1 says such a request must be refused or its
connection closed). And uvicorn has no timeout for a request that arrives slowly: its keep-alive timer only
runs between requests, so connections sending a byte a second are held for ever.
"""

import asyncio

import h11
from fastapi.responses import JSONResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)


class RefuseAmbiguousLength:
    """ASGI middleware: a request with both Content-Length and Transfer-Encoding gets 400 and its connection
    is closed (the `connection: close` header makes uvicorn close it after the answer), so nothing sent after
    its body is read as another request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        names = {name for name, _ in scope.get("headers", ())} if scope["type"] == "http" else set()
        if {b"content-length", b"transfer-encoding"} <= names:
            answer = JSONResponse(
                {"detail": "both Content-Length and Transfer-Encoding given; send one of them (RFC 9112 section 6.1)"},
                400,
                headers={"connection": "close"},
            )
            return await answer(scope, receive, send)
        await self.app(scope, receive, send)


def deadline_protocol(request_seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request (headers and body) has not fully arrived
    `request_seconds` after its first byte; the time the model then takes to answer is not counted."""

    class DeadlineH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def data_received(self, data: bytes) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(request_seconds, self._too_slow)
            super().data_received(data)
            if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
                self._cancel_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # A pipelined request already half buffered gets its own deadline, whether or not more bytes come.
            if self._deadline is None and not self.transport.is_closing() and self.conn.their_state is h11.SEND_BODY:
                self._deadline = self.loop.call_later(request_seconds, self._too_slow)

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_deadline()
            super().connection_lost(exc)

        def _cancel_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if self.cycle is None or not self.cycle.response_started:
                body = b'{"detail":"request not received within %d s; send it faster"}' % request_seconds
                self.transport.write(TIMED_OUT % (len(body), body))
            self.transport.close()

    return DeadlineH11Protocol
