"""A loopback fake of the Mozilla Data Collective API, for offline tests of the `mdc` source.

It answers exactly what datacollective 0.7 calls for `download_dataset` (see its datasets.py / download.py):
  GET  {MDC_API_URL}/datasets/<id>            public details: id, filename, checksum, sizeBytes
  POST {MDC_API_URL}/datasets/<id>/download   needs "Authorization: Bearer <key>": downloadUrl, sizeBytes, checksum
  GET  <downloadUrl>                          the archive, honouring "Range: bytes=N-" (the SDK resumes that way)
Errors come back as the real API's do: a JSON body with "message" and status 401/403/404.
Point the SDK at it with MDC_API_URL=server.api_url.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeDataset:
    archive: bytes
    filename: str
    forbidden: bool = False  # terms not accepted: the download session answers 403


@dataclass
class FakeMDC:
    api_key: str = "test-key-123"
    datasets: dict[str, FakeDataset] = field(default_factory=dict)
    # Close the connection after this many bytes of the next archive response (then reset): an interrupted download.
    cut_next_download_at: int | None = None
    requests: list[dict] = field(default_factory=list)  # method, path, range, auth header present

    def __post_init__(self):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/api"

    def add(self, dataset_id: str, archive: bytes, filename: str, forbidden: bool = False) -> None:
        self.datasets[dataset_id] = FakeDataset(archive, filename, forbidden)

    def __enter__(self) -> "FakeMDC":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _handler_for(state: FakeMDC):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> None:
            state.requests.append({
                "method": self.command,
                "path": self.path,
                "range": self.headers.get("Range"),
                "auth": self.headers.get("Authorization"),
            })

        def _details(self, dataset_id: str) -> dict | None:
            ds = state.datasets.get(dataset_id)
            if ds is None:
                return None
            return {"id": dataset_id, "slug": dataset_id, "name": f"Fake {dataset_id}", "filename": ds.filename,
                    "checksum": _checksum(ds.archive), "sizeBytes": len(ds.archive)}

        def do_GET(self):  # noqa: N802 - http.server's naming
            self._record()
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) == 3 and parts[:2] == ["api", "datasets"]:
                details = self._details(parts[2])
                if details is None:
                    return self._json(404, {"message": "Dataset not found"})
                return self._json(200, details)
            if len(parts) == 2 and parts[0] == "files" and parts[1] in state.datasets:
                return self._serve_archive(state.datasets[parts[1]].archive)
            return self._json(404, {"message": "Not found"})

        def do_POST(self):  # noqa: N802
            self._record()
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) == 4 and parts[:2] == ["api", "datasets"] and parts[3] == "download":
                auth = self.headers.get("Authorization") or ""
                if auth != f"Bearer {state.api_key}":
                    return self._json(401, {"message": "Invalid API key"})
                ds = state.datasets.get(parts[2])
                if ds is None:
                    return self._json(404, {"message": "Dataset not found"})
                if ds.forbidden:
                    return self._json(403, {"message": "You must accept the dataset's terms before downloading"})
                return self._json(200, {"downloadUrl": f"{state.base_url}/files/{parts[2]}",
                                        "sizeBytes": len(ds.archive), "checksum": _checksum(ds.archive)})
            return self._json(404, {"message": "Not found"})

        def _serve_archive(self, data: bytes) -> None:
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[len("bytes="):].split("-")[0])
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut = state.cut_next_download_at
            if cut is not None:
                state.cut_next_download_at = None
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler
