"""Serving a report folder on this machine only (127.0.0.1), with byte ranges for video seeking."""

from __future__ import annotations

import functools
import os
import re
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ...errors import ImageIOError

__all__ = ["serve_report"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class _ReportHandler(SimpleHTTPRequestHandler):
    """Static files of one folder, quiet, with single byte ranges (browsers seek videos so)."""

    def log_message(self, format, *args) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        if self.command in ("GET", "HEAD") and not self.headers.get("Range"):
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def send_head(self):
        match = _RANGE.match(self.headers.get("Range", "").strip())
        path = Path(self.translate_path(self.path))
        if match is None or not path.is_file() or match.groups() == ("", ""):
            return super().send_head()
        size = path.stat().st_size
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        else:  # the last N bytes
            start, end = max(0, size - int(last)), size - 1
        if start > end or start >= size:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        f = open(path, "rb")  # noqa: SIM115 (closed by the base class after copying)
        f.seek(start)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Limited(f, end - start + 1)


class _Limited:
    """A file object that reads at most ``n`` bytes (what copyfile sends for a range)."""

    def __init__(self, f, n: int) -> None:
        self._f, self._left = f, n

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        data = self._f.read(size)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._f.close()


def serve_report(
    folder: str | os.PathLike[str], port: int = 0, host: str = "127.0.0.1"
) -> ThreadingHTTPServer:
    """An HTTP server for a report folder, bound and ready; call ``serve_forever()`` on it.

    Args:
        folder: a folder written by :func:`write_report`.
        port: TCP port; 0 picks a free one (read it from ``server.server_address[1]``).
        host: address to listen on; the default, 127.0.0.1, is reachable from this machine only.

    Returns:
        The bound server (close it with ``shutdown()`` and ``server_close()``).

    Raises:
        ImageIOError: ``folder`` has no index.html, or the port cannot be bound.

    Example:
        >>> import tempfile, threading, urllib.request
        >>> d = Path(tempfile.mkdtemp()); _ = (d / "index.html").write_text("hi")
        >>> server = serve_report(d)
        >>> t = threading.Thread(target=server.serve_forever, daemon=True); t.start()
        >>> url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        >>> urllib.request.urlopen(url).read()
        b'hi'
        >>> server.shutdown(); server.server_close()
    """
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise ImageIOError(f"cannot serve '{folder}': it has no index.html (not a report)")
    handler = functools.partial(_ReportHandler, directory=str(folder))
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise ImageIOError(f"cannot serve on {host}:{port}: {e.strerror}") from e
