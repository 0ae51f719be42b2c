"""The dispatchers' console: a web screen for dispatchers and supervisors, served by the bridge at `/console`."""

from __future__ import annotations

import re
from pathlib import Path

import xstatic.pkg.leaflet
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from burgermelding_shared.errors import ServiceError
from dispatch_bridge.console import routes
from dispatch_bridge.console.live import feed_hook
from dispatch_bridge.console.sessions import LoginRequired
from dispatch_bridge.console.texts import Texts

__all__ = ["feed_hook", "install"]
PREFIX = "/console"
IMAGE_POLICY = b"default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def content_security_policy(tile_url: str) -> str:
    """No inline script or style anywhere; images from ourselves and the map's tile server only."""
    tiles = ""
    origin = re.match(r"(https?)://([^/]+)", tile_url)
    if origin:  # a subdomain placeholder ({s}.tiles.example) allows every subdomain of that host
        tiles = f" {origin.group(1)}://{re.sub(r'[{][a-z]+[}]', '*', origin.group(2))}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:"
        + tiles
        + "; connect-src 'self'; media-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors "
        "'none'; base-uri 'none'"
    )


class ConsoleHeaders:
    """Every console answer: the strict policy, never cached (pages show who saw what), never framed (`nosniff`
    comes with every answer of the service: burgermelding_shared.openapi.ApiHeaders). The referrer stays within
    our origin (no-referrer would make browsers send `Origin: null` on our own forms)."""

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(PREFIX + "/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control" or static]
                image = any(k.lower() == b"content-type" and v.startswith(b"image/") for k, v in headers)
                # A photo opened on its own is shown by the browser's image viewer, which styles it inline:
                # allowed there (no script can run in such a document), nowhere else.
                headers += [
                    (k, IMAGE_POLICY if image and k == b"content-security-policy" else v) for k, v in self.headers
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                    headers.append((b"pragma", b"no-cache"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI, tile_url: str) -> None:
    app.include_router(routes.router)
    app.mount(PREFIX + "/static/leaflet", StaticFiles(directory=xstatic.pkg.leaflet.BASE_DIR), name="leaflet")
    app.mount(PREFIX + "/static", StaticFiles(directory=Path(__file__).parent / "static"), name="console")
    app.add_middleware(ConsoleHeaders, policy=content_security_policy(tile_url))

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.headers.get("x-console") == "fetch" or request.url.path.endswith("/events"):
            return JSONResponse({"login": exc.reason}, status_code=401)
        return RedirectResponse(f"{PREFIX}/login?reason={exc.reason}", status_code=303)

    api_handlers = {
        kind: app.exception_handlers[kind] for kind in (ServiceError, RequestValidationError, StarletteHTTPException)
    }

    async def console_error(request: Request, exc: Exception) -> Response:
        """In the console an error is a page in the dispatcher's language; elsewhere the problem JSON."""
        kind = next(k for k in api_handlers if isinstance(exc, k))
        if not request.url.path.startswith(PREFIX + "/") or request.headers.get("x-console") == "fetch":
            answer = api_handlers[kind](request, exc)  # Starlette allows plain and async handlers
            return answer if isinstance(answer, Response) else await answer
        if isinstance(exc, ServiceError):
            status, english, dutch, headers = exc.status_code, exc.detail, exc.detail_nl, exc.headers
        elif isinstance(exc, RequestValidationError):
            status, english, dutch, headers = (
                422,
                "the address has a value that is not allowed",
                "het adres bevat een waarde die niet is toegestaan",
                None,
            )
        else:
            assert isinstance(exc, StarletteHTTPException)
            status, headers = exc.status_code, None
            english, dutch = (
                ("no such page", "deze pagina bestaat niet") if status == 404 else (str(exc.detail), str(exc.detail))
            )
        language = routes.language_of(request)
        return routes.templates.TemplateResponse(
            request,
            "error.html",
            {
                "t": Texts(language),
                "lang": language,
                "user": None,
                "path": request.url.path,
                "message": dutch if language == "nl" else english,
                "status": status,
            },
            status_code=status,
            headers=headers,
        )

    for kind in api_handlers:
        app.exception_handlers[kind] = console_error
