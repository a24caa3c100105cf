"""Limits enforced by the HTTP server itself, before a request reaches the app.

* **Header size.** httptools parses header fields of any length, and the app
  then reads them in Python: a 5 MB ``Accept`` kept the event loop busy for
  seconds. :class:`BoundedHttpToolsProtocol` counts the bytes of the header
  fields as they arrive and answers 431 (Request Header Fields Too Large) as
  soon as they pass ``max_header_bytes``, or 414 when the URL passes
  ``max_request_bytes`` (a GET query lives in the URL), then closes the
  connection without reading the rest.
* **Connections.** ``max_connections`` is uvicorn's ``limit_concurrency``:
  beyond that many open connections or requests in progress, a request gets
  503 with ``Retry-After`` at once.

:func:`uvicorn_options` turns :class:`~epar_graph.serve.settings.Settings` into
the keyword arguments of ``uvicorn.Config``, for ``epar-graph serve`` and tests alike.
"""

from __future__ import annotations

from typing import Any

import httptools
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from epar_graph.serve.settings import Settings

#: At most this many header fields in one request.
MAX_HEADER_FIELDS = 100
#: Extra room for the request line beyond the query string's own limit.
URL_SLACK_BYTES = 8192
RETRY_AFTER_SECONDS = 2


class _Refused(Exception):
    """Raised from a parser callback to stop reading a request that is over a limit."""


async def _busy(scope: Any, receive: Any, send: Any) -> None:
    """Answer of a request beyond ``max_connections``: uvicorn's 503, with Retry-After."""
    body = b"The server has as many connections as it takes; try again shortly.\n"
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded header fields and URL (set by :func:`bounded_protocol`)."""

    max_header_bytes = 16 * 1024
    max_url_bytes = 1_000_000 + URL_SLACK_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._new_request()
        self._refusal: tuple[int, str] | None = None
        self._began = False

    def _new_request(self) -> None:
        self._url_bytes = 0
        self._header_bytes = 0
        self._header_fields = 0
        self._pending = 0  # bytes received while the header block is incomplete
        self._in_head = True

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        raise _Refused(message)

    # parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._new_request()
        self._began = True

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self.max_url_bytes:
            self._refuse(414, f"The URL is longer than {self.max_url_bytes} bytes.")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        self._header_fields += 1
        if self._header_bytes > self.max_header_bytes:
            self._refuse(431, f"The request's header fields are longer than {self.max_header_bytes} bytes.")
        if self._header_fields > MAX_HEADER_FIELDS:
            self._refuse(431, f"The request has more than {MAX_HEADER_FIELDS} header fields.")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        super()._start_asgi_task(cycle, _busy if app is service_unavailable else app)

    # reading

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        self._unset_keepalive_if_required()
        url_before = self._url_bytes
        self._began = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._send_refusal()
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        # httptools holds a header value until it is complete: bound what it may hold meanwhile
        if self._in_head and not self._began:
            self._pending += len(data) - (self._url_bytes - url_before)
            if self._pending > self.max_header_bytes + URL_SLACK_BYTES:
                self._refusal = (431, f"The request's header fields are longer than {self.max_header_bytes} bytes.")
                self._send_refusal()

    def _send_refusal(self) -> None:
        assert self._refusal is not None
        status, message = self._refusal
        body = (message + "\n").encode()
        head = [
            STATUS_LINE[status],
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.logger.info("refused a request: %s", message)
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def bounded_protocol(settings: Settings) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with the limits of ``settings``."""
    return type(
        "EparHttpProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_header_bytes": settings.max_header_bytes, "max_url_bytes": settings.max_request_bytes + URL_SLACK_BYTES},
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` that enforce the server-level limits of ``settings``."""
    return {"http": bounded_protocol(settings), "limit_concurrency": settings.max_connections}
