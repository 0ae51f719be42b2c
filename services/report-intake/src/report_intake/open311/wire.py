"""Open311's two wire formats, JSON and XML, for answers and for errors.

GeoReport v2 names the format in the path (`services.json`, `services.xml`), so every route exists twice
(`open311_route`). An error on these routes is in the spec's shape, a list of `{code, description}` (XML:
`<errors><error>...`), which stock clients read; we add `reason` (the stable machine-readable code our problem
details call `error`) and `description_nl`. Every failure, ours or the framework's, gets that shape: the route
class asks the app's own exception handler for the problem details and rewrites them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any, Literal
from xml.etree import ElementTree

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, RootModel

from burgermelding_shared.errors import ERROR_EXAMPLES

WireFormat = Literal["json", "xml"]
FORMATS: tuple[WireFormat, ...] = ("json", "xml")
XML_MEDIA_TYPE = "application/xml"

# XML names the items of a list by the list: <services><service/>, <attributes><attribute/>, <values><value/>.
XML_ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
}


class XmlResponse(JSONResponse):
    """An XML answer. A JSONResponse only to FastAPI's document, which gives a route's model as the schema of its
    answer only for JSON responses: so the XML routes document the same model (their elements are its fields)."""

    media_type = XML_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else to_xml("response", content)


# Characters XML 1.0 cannot hold at all (escaping does not help): gone from any text, which may quote a client.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else NOT_XML.sub("", str(value))


def _xml_fill(element: ElementTree.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _xml_fill(ElementTree.SubElement(element, key), inner)
    elif isinstance(value, list):
        item_name = XML_ITEM_NAMES.get(element.tag, "item")
        for inner in value:
            _xml_fill(ElementTree.SubElement(element, item_name), inner)
    else:
        element.text = _xml_text(value)


def to_xml(root: str, body: Any) -> bytes:
    """`body` (a list of items, or one object) as Open311 writes it in XML, under the element `root`."""
    element = ElementTree.Element(root)
    _xml_fill(element, body)
    return ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)


def answer(wire: WireFormat, root: str, body: Any, status_code: int = 200) -> Response:
    """An answer in the format the path asked for; `root` is its XML element (`services`, `service_requests`)."""
    if wire == "xml":
        return XmlResponse(to_xml(root, body), status_code=status_code)
    return JSONResponse(body, status_code=status_code)


def wire_of(request: Request) -> WireFormat:
    return "xml" if request.url.path.endswith(".xml") else "json"


class Open311Error(BaseModel):
    code: int  # the HTTP status, as the spec has it
    description: str  # in English, or in Dutch when Accept-Language prefers it
    description_nl: str
    reason: str  # the machine-readable code (problem details' `error`): see the error catalogue


class Open311Errors(RootModel[list[Open311Error]]):
    """An Open311 error answer: a list with one error (XML: `<errors><error>...</error></errors>`)."""


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for an Open311 route: errors in the spec's shape."""
    return {code: {"description": ERROR_EXAMPLES.get(code, ("Error",))[0], "model": Open311Errors} for code in codes}


def _handler_for(request: Request, exc: Exception) -> Callable[..., Any] | None:
    handlers = request.app.exception_handlers
    return next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)


async def as_open311_error(request: Request, exc: Exception) -> Response:
    """The app's own answer to `exc` (problem details), rewritten in Open311's error shape; status and headers
    (Retry-After, API-Version) stay."""
    handler = _handler_for(request, exc)
    if handler is None:
        raise exc
    problem_response: Response = await handler(request, exc)
    try:
        problem = json.loads(bytes(problem_response.body))
    except ValueError:
        return problem_response  # no body to rewrite (a client that left)
    error = {
        "code": problem_response.status_code,
        "description": problem.get("detail", ""),
        "description_nl": problem.get("detail_nl", ""),
        "reason": problem.get("error", ""),
    }
    headers = {k: v for k, v in problem_response.headers.items() if k.lower() not in ("content-type", "content-length")}
    response = answer(wire_of(request), "errors", [error], problem_response.status_code)
    response.headers.update(headers)
    return response


class Open311Route(APIRoute):
    """A route whose failures are answered in Open311's error shape, in the path's format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_open311(request: Request) -> Response:
            try:
                return await handle(request)
            except Exception as exc:  # every failure gets the spec's shape; the app's handlers decide its status
                return await as_open311_error(request, exc)

        return handle_open311


def open311_route(router: APIRouter, method: str, path: str, **options: Any) -> Callable[[Callable], Callable]:
    """Register a route function at `path.json` and `path.xml` (operationIds `name` and `nameXml`)."""

    def register(function: Callable) -> Callable:
        for wire in FORMATS:
            router.add_api_route(
                f"{path}.{wire}",
                function,
                methods=[method],
                name=function.__name__ + ("_xml" if wire == "xml" else ""),
                response_class=XmlResponse if wire == "xml" else JSONResponse,
                **options,
            )
        return function

    return register
