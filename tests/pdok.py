"""A local stand-in for PDOK's Locatieserver, answering in its documented shape (Solr's `response.docs`,
`centroide_ll` as WKT, `afstand` in metres): `free` finds Coolsingel 40 in Rotterdam, `reverse` an address
north of 52 degrees (far away above 53), and `failing` makes it answer 503, as PDOK does when it is down."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Locatieserver:
    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, list[str]]]] = []
        self.failing = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                outer.asked.append((parts.path, query))
                if outer.failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                docs: list[dict[str, Any]] = []
                if parts.path.endswith("/reverse") and float(query["lat"][0]) > 52:
                    docs = [{"weergavenaam": "Coolsingel 40, 3011AD Rotterdam", "afstand": 12.5}]
                if parts.path.endswith("/reverse") and float(query["lat"][0]) > 53:
                    docs = [{"weergavenaam": "Ergens 1, Ver Weg", "afstand": 5000}]
                if parts.path.endswith("/free") and "coolsingel" in query["q"][0].lower():
                    docs = [
                        {"weergavenaam": "Coolsingel 40, 3011AD Rotterdam", "centroide_ll": "POINT(4.47933 51.92291)"}
                    ]
                body = json.dumps({"response": {"numFound": len(docs), "start": 0, "docs": docs}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bzk/locatieserver/search/v3_1"

    def stop(self) -> None:
        self.server.shutdown()
