"""The published OpenAPI documents as a contract: committed snapshots in docs/openapi/, checked in lint.

    python scripts/openapi_contract.py --write   # after a change to an API: new snapshots
    python scripts/openapi_contract.py --check   # lint: the snapshots are the services' documents, a change to
                                                 # them is versioned (a breaking one by a new major version), and
                                                 # they pass our ruleset (.spectral.yaml) in Spectral

A document that differs from its snapshot fails the check until the snapshot is written again. Every change
of a snapshot in its history (each commit that changed it, and the working tree) must raise `info.version`,
with an entry for the new version in CHANGELOG.md; a breaking change (an operation, a response or a property
removed, a parameter or a body field newly required, an enum value dropped, a credential newly needed) must
raise the major version.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED_LATE = "x-burgermelding-documented-late"  # on a parameter: required all along (see breaking_changes)
sys.path.insert(0, str(ROOT))
from scripts.node_tools import NodeToolMissing, node_tool  # noqa: E402

SNAPSHOTS = ROOT / "docs" / "openapi"
# The public APIs (verification has none: its whole document is internal).
APIS = {
    "report-intake": "report_intake.main",
    "dispatch-bridge": "dispatch_bridge.main",
    "meldkamer-sim": "meldkamer_sim.main",
}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def current_documents() -> dict[str, dict[str, Any]]:
    import importlib

    return {name: importlib.import_module(module).create_app().openapi() for name, module in APIS.items()}


def dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 20:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = document.get("components", {}).get("schemas", {}).get(name, {})
        seen += 1
    return schema


def schema_breaks(old_doc: dict, new_doc: dict, old: dict, new: dict, where: str, reading: bool) -> list[str]:
    """What a client written against `old` finds broken in `new`. `reading`: the client reads this (a response):
    a property or enum value it knew may not go; else it writes it (a request): nothing may become required and
    no enum value it may send may go."""
    old, new = resolve(old_doc, old), resolve(new_doc, new)
    found: list[str] = []
    if set(old.get("enum", [])) - set(new.get("enum", old.get("enum", []))) and "enum" in new:
        gone = sorted(map(str, set(old["enum"]) - set(new["enum"])))
        found.append(f"{where}: enum values removed: {gone}")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    if reading:
        found += [f"{where}: property {name!r} removed" for name in sorted(set(old_props) - set(new_props))]
    else:
        newly = set(new.get("required", [])) - set(old.get("required", []))
        found += [f"{where}: property {name!r} newly required" for name in sorted(newly)]
    for name in sorted(set(old_props) & set(new_props)):
        found += schema_breaks(old_doc, new_doc, old_props[name], new_props[name], f"{where}.{name}", reading)
    if "items" in old and "items" in new:
        found += schema_breaks(old_doc, new_doc, old["items"], new["items"], f"{where}[]", reading)
    return found


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for path, old_item in old.get("paths", {}).items():
        for method, old_op in old_item.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            new_op = new.get("paths", {}).get(path, {}).get(method)
            if new_op is None:
                found.append(f"{where}: removed")
                continue
            old_params = {(p["in"], p["name"]): p for p in old_op.get("parameters", [])}
            for p in new_op.get("parameters", []):
                known = old_params.get((p["in"], p["name"]))
                # A parameter the service always required, documented only now, says so (DOCUMENTED_LATE): the
                # API did not change, its document caught up; the CHANGELOG says when.
                if p.get("required") and not (known and known.get("required")) and DOCUMENTED_LATE not in p:
                    found.append(f"{where}: {p['in']} parameter {p['name']!r} newly required")
            # A credential is newly needed when every alternative now asks for one (an empty one: optional).
            alternatives = new_op.get("security", [])
            if alternatives and all(alternatives) and not old_op.get("security"):
                found.append(f"{where}: a credential newly needed")
            for status, old_response in old_op.get("responses", {}).items():
                new_response = new_op.get("responses", {}).get(status)
                if status.startswith("2") and new_response is None:
                    found.append(f"{where}: response {status} removed")
                    continue
                for media, content in (old_response or {}).get("content", {}).items():
                    new_content = (new_response or {}).get("content", {}).get(media)
                    if status.startswith("2") and new_content is None:
                        found.append(f"{where}: {status} {media} removed")
                    elif new_content and "schema" in content and "schema" in new_content:
                        found += schema_breaks(
                            old, new, content["schema"], new_content["schema"], f"{where} {status}", True
                        )
            old_body = old_op.get("requestBody", {}).get("content", {})
            for media, content in new_op.get("requestBody", {}).get("content", {}).items():
                if media in old_body and "schema" in content and "schema" in old_body[media]:
                    found += schema_breaks(
                        old, new, old_body[media]["schema"], content["schema"], f"{where} body", False
                    )
    return found


SPECTRAL = ROOT / "tools" / "spectral"


def spectral() -> list[str]:
    """The snapshots through Spectral with our ruleset (.spectral.yaml): its errors fail, its warnings are shown.
    Spectral is installed from tools/spectral's lock file the first time (npm, from the npm registry)."""
    try:
        binary = node_tool(SPECTRAL, "spectral", "Spectral")
    except NodeToolMissing as missing:
        return [str(missing)]
    snapshots = sorted(str(path) for path in SNAPSHOTS.glob("*.json"))
    linted = subprocess.run(
        [str(binary), "lint", "--ruleset", str(ROOT / ".spectral.yaml"), "-F", "error", "-D", *snapshots],
        cwd=ROOT,
        check=False,
    )
    return [] if linted.returncode == 0 else ["Spectral found errors in the documents (see above)"]


def version(document: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(part) for part in document["info"]["version"].split("."))


def history(name: str) -> list[tuple[str, dict[str, Any]]]:
    """Every committed version of a snapshot, oldest first (the commit and the document), then the one in the
    working tree if it differs: each step must be versioned, so a change cannot slip through in a commit that
    another one follows."""
    path = f"docs/openapi/{name}.json"
    listed = subprocess.run(
        ["git", "log", "--reverse", "--format=%H", "--", path], cwd=ROOT, capture_output=True, text=True, check=False
    )
    steps = []
    for commit in listed.stdout.split():
        shown = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True, text=True)
        if shown.returncode == 0:
            steps.append((commit[:10], json.loads(shown.stdout)))
    working = SNAPSHOTS / f"{name}.json"
    if working.exists() and (not steps or dump(steps[-1][1]) != working.read_text()):
        steps.append(("working tree", json.loads(working.read_text())))
    return steps


def versioning_problems(name: str, before: dict[str, Any], after: dict[str, Any], changelog: str) -> list[str]:
    """Why a change from `before` to `after` is not versioned as it must be (empty: it is)."""
    if dump(before) == dump(after):
        return []
    problems = []
    old_version, new_version = version(before), version(after)
    breaks = breaking_changes(before, after)
    if breaks and new_version[0] <= old_version[0]:
        problems.append(
            f"{name}: breaking changes need a new major version (now {after['info']['version']}):\n  "
            + "\n  ".join(breaks)
        )
    elif new_version <= old_version:
        problems.append(f"{name}: the document changed but its version did not rise ({after['info']['version']})")
    if f"[{after['info']['version']}]" not in changelog:
        problems.append(f"{name}: CHANGELOG.md has no entry for [{after['info']['version']}]")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write the snapshots from the services' documents")
    parser.add_argument("--check", action="store_true", help="fail when a snapshot is stale or a change unversioned")
    args = parser.parse_args()
    documents = current_documents()
    problems: list[str] = []
    changelog = (ROOT / "CHANGELOG.md").read_text()
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        path = SNAPSHOTS / f"{name}.json"
        if args.write:
            path.write_text(dump(document))
        elif not path.exists() or path.read_text() != dump(document):
            problems.append(
                f"{name}: docs/openapi/{name}.json is not the service's document: run "
                "`python scripts/openapi_contract.py --write` (and version the change)"
            )
        steps = history(name)
        for (_, before), (where, after) in itertools.pairwise(steps):
            problems += [f"{problem} (at {where})" for problem in versioning_problems(name, before, after, changelog)]
    if args.check and not problems:
        problems += spectral()
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"OpenAPI snapshots current and versioned: {', '.join(documents)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
