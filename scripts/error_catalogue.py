"""The error catalogue, generated from the code: every error code a service can answer with, its status and texts.

    python scripts/error_catalogue.py --write   # after adding or changing an error
    python scripts/error_catalogue.py --check   # lint: the catalogue is the code's

Read from the source, not kept by hand: each `ServiceError(status, "code", "English", detail_nl="Dutch")`, each
call of a function that passes one of its parameters on as a ServiceError's code (`_refuse("photo_unreadable",
...)`), and Starlette's own errors (`errors.HTTP_ERRORS`). It writes
`shared/src/burgermelding_shared/error_catalogue.py` (the codes by service, which the OpenAPI documents give as
the enum of `ProblemDetails.error`, so that schemathesis and the contract tests fail on a code it does not know)
and `docs/errors.md` (the page for client developers).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "shared": ROOT / "shared" / "src" / "burgermelding_shared",
    "report-intake": ROOT / "services" / "report-intake" / "src" / "report_intake",
    "verification": ROOT / "services" / "verification" / "src" / "verification",
    "dispatch-bridge": ROOT / "services" / "dispatch-bridge" / "src" / "dispatch_bridge",
    "meldkamer": ROOT / "infra" / "meldkamer-sim" / "src" / "meldkamer_sim",
}
MODULE = PACKAGES["shared"] / "error_catalogue.py"
PAGE = ROOT / "docs" / "errors.md"


@dataclass
class Entry:
    statuses: set[int] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    english: set[str] = field(default_factory=set)
    dutch: set[str] = field(default_factory=set)


def text_of(node: ast.expr | None) -> str:
    """A literal text as it is, an f-string with its holes shown as {...}, anything else as `...`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{...}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return text_of(node.left) + text_of(node.right)
    return "..."


def call_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def modules() -> list[tuple[str, ast.Module]]:
    found = []
    for service, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if "migrations" not in path.parts and path != MODULE:
                found.append((service, ast.parse(path.read_text(), str(path))))
    return found


# What a ServiceError's arguments are: (status, code, English) by position, Dutch by keyword.
SERVICE_ERROR = {
    "status": (0, "status_code"),
    "code": (1, "error"),
    "english": (2, "detail"),
    "dutch": (-1, "detail_nl"),
}


def forwarders(trees: list[tuple[str, ast.Module]]) -> dict[str, dict[str, tuple[int, str]]]:
    """Functions that make a ServiceError from their parameters: for each, where (position, name) each of the
    ServiceError's arguments comes from among its parameters; a literal default status is kept as position -2."""
    found: dict[str, dict[str, tuple[int, str]]] = {}
    for _service, tree in trees:
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            parameters = [a.arg for a in function.args.args]
            for call in ast.walk(function):
                if not (isinstance(call, ast.Call) and call_name(call) == "ServiceError"):
                    continue
                code = argument(call, 1, "error")
                if isinstance(code, ast.Name) and code.id in parameters:
                    where = {}
                    for part, (position, keyword) in SERVICE_ERROR.items():
                        value = argument(call, position, keyword) if position >= 0 else argument(call, 99, keyword)
                        if isinstance(value, ast.Name) and value.id in parameters:
                            where[part] = (parameters.index(value.id), value.id)
                    defaults = dict(
                        zip(
                            parameters[len(parameters) - len(function.args.defaults) :],
                            function.args.defaults,
                            strict=True,
                        )
                    )
                    status = argument(call, 0, "status_code")
                    if isinstance(status, ast.Constant):
                        where["status"] = (-2, str(status.value))
                    elif isinstance(status, ast.Name) and isinstance(defaults.get(status.id), ast.Constant):
                        where.setdefault("status", (parameters.index(status.id), status.id))
                        where["status_default"] = (-2, str(defaults[status.id].value))  # type: ignore[attr-defined]
                    found[function.name] = where
    return found


def forwarded(call: ast.Call, where: dict[str, tuple[int, str]], key: str) -> ast.expr | None:
    """The argument of a call of a forwarding function that becomes the ServiceError's `key`."""
    if key not in where or where[key][0] < 0:
        return None
    position, parameter = where[key]
    return argument(call, position, parameter)


def catalogue() -> dict[str, Entry]:
    trees = modules()
    passing = forwarders(trees)
    entries: dict[str, Entry] = defaultdict(Entry)

    def add(
        service: str, code: ast.expr | None, status: ast.expr | int | None, en: ast.expr | None, nl: ast.expr | None
    ) -> None:
        if not (isinstance(code, ast.Constant) and isinstance(code.value, str)):
            return
        entry = entries[code.value]
        entry.services.add(service)
        if isinstance(status, int):
            entry.statuses.add(status)
        elif isinstance(status, ast.Constant) and isinstance(status.value, int):
            entry.statuses.add(status.value)
        entry.english.add(text_of(en))
        entry.dutch.add(text_of(nl))

    for service, tree in trees:
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            name = call_name(call)
            if name == "ServiceError":
                add(
                    service,
                    argument(call, 1, "error"),
                    argument(call, 0, "status_code"),
                    argument(call, 2, "detail"),
                    argument(call, 99, "detail_nl"),
                )
            elif name in passing:
                where = passing[name]

                status: ast.expr | int | None = forwarded(call, where, "status")
                if status is None and "status" in where and where["status"][0] == -2:
                    status = int(where["status"][1])
                if status is None and "status_default" in where:
                    status = int(where["status_default"][1])
                code, english, dutch = (forwarded(call, where, key) for key in ("code", "english", "dutch"))
                add(service, code, status, english, dutch)
    from burgermelding_shared.errors import HTTP_ERRORS  # Starlette's own errors, in our body

    for status, (code, dutch) in HTTP_ERRORS.items():
        entry = entries[code]
        entry.services.add("shared")
        entry.statuses.add(status)
        entry.english.add("(Starlette's own text)")
        entry.dutch.add(dutch)
    entries["http_error"].services.add("shared")
    entries["http_error"].english.add("(any other HTTP error of the framework)")
    entries["http_error"].dutch.add("Het verzoek is mislukt")
    return dict(sorted(entries.items()))


def by_service(entries: dict[str, Entry]) -> dict[str, list[str]]:
    services = [name for name in PACKAGES if name != "shared"]
    return {
        service: sorted(code for code, entry in entries.items() if entry.services & {service, "shared"})
        for service in services
    }


def module_text(entries: dict[str, Entry]) -> str:
    lines = [
        '"""Every error code each service can answer with (`ProblemDetails.error`), by service.',
        "",
        "Generated from the code by scripts/error_catalogue.py (--write); `python3 dev.py lint` checks that it is",
        'current. Do not edit by hand."""',
        "",
        "ERROR_CODES: dict[str, tuple[str, ...]] = {",
    ]
    for service, codes in by_service(entries).items():
        lines.append(f"    {json.dumps(service)}: (")
        lines += [f"        {json.dumps(code)}," for code in codes]
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def page_text(entries: dict[str, Entry]) -> str:
    lines = [
        "# Error codes",
        "",
        "Every error answer of every service is RFC 9457 problem details (`application/problem+json`) with our",
        "machine-readable code in `error` (also the last part of `type`), `detail` in English or, when",
        "`Accept-Language` prefers it, Dutch, and `detail_nl` always in Dutch. A client acts on `error` and the",
        "status, never on the texts. Generated from the code (`scripts/error_catalogue.py`); `{...}` stands for a",
        "part that the request decides.",
        "",
        "| error | status | services | English | Dutch |",
        "|---|---|---|---|---|",
    ]
    for code, entry in entries.items():
        services = ", ".join(sorted(entry.services)).replace("shared", "all")
        statuses = ", ".join(map(str, sorted(entry.statuses))) or "varies"
        english = " / ".join(sorted(t for t in entry.english if t != "...")) or "(varies)"
        dutch = " / ".join(sorted(t for t in entry.dutch if t != "...")) or "(varies)"
        lines.append(f"| `{code}` | {statuses} | {services} | {english} | {dutch} |".replace("\n", " "))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true")
    group.add_argument("--check", action="store_true")
    args = parser.parse_args()
    entries = catalogue()
    wanted = {MODULE: module_text(entries), PAGE: page_text(entries)}
    if args.write:
        for path, text in wanted.items():
            path.write_text(text)
        print(f"{len(entries)} error codes written to {MODULE.relative_to(ROOT)} and {PAGE.relative_to(ROOT)}")
        return 0
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    for path in stale:
        print(f"{path.relative_to(ROOT)} is not what the code says: run `python scripts/error_catalogue.py --write`")
    if not stale:
        print(f"error catalogue current: {len(entries)} codes")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
