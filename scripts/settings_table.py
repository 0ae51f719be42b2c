"""The settings page's table (docs/settings.md), from the settings classes.

`.venv/bin/python scripts/settings_table.py` prints it; `--write` puts it in the page, below the page's marker
line (what is above it is written by hand). tests/test_readme.py fails when the page differs from it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from burgermelding_shared.settings import PLACEHOLDER_PREFIX, ServiceSettings
from dispatch_bridge.config import BridgeSettings
from meldkamer_sim.config import MeldkamerSettings
from report_intake.config import IntakeSettings
from verification.config import VerificationSettings

PAGE = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
MARKER = "<!-- Generated from here on by scripts/settings_table.py: run it with --write, do not edit by hand. -->"


def shown(field: object) -> str:
    default = field.get_default(call_default_factory=True)  # type: ignore[attr-defined]
    if isinstance(default, list) and default and hasattr(default[0], "model_dump_json"):
        return "the rules in *Evidence and records*"
    if hasattr(default, "model_dump_json"):
        return default.model_dump_json()
    if isinstance(default, str) and default.startswith(PLACEHOLDER_PREFIX):
        return "placeholder, development only"
    if isinstance(default, dict) and any(str(key).startswith(PLACEHOLDER_PREFIX) for key in default):
        return "a published key, development only"
    if field in (ServiceSettings.model_fields["service_key"], ServiceSettings.model_fields["trusted_service_keys"]):
        return "published development keys"
    return str(default)


def table() -> str:
    common = set(ServiceSettings.model_fields) - {"port"}
    lines = ["Common to every service, with the service's prefix (e.g. `BM_INTAKE_DATABASE_URL`):", ""]
    lines += ["| setting | default | meaning |", "|---|---|---|"]
    for name, field in ServiceSettings.model_fields.items():
        if name not in ("service_name", "port"):
            lines.append(f"| `{name.upper()}` | `{shown(field)}` | {field.description or ''} |")
    for cls, prefix in [
        (IntakeSettings, "BM_INTAKE_"),
        (VerificationSettings, "BM_VERIFICATION_"),
        (BridgeSettings, "BM_BRIDGE_"),
        (MeldkamerSettings, "BM_MELDKAMER_"),
    ]:
        lines += ["", f"`{prefix}*` only:", "", "| setting | default | meaning |", "|---|---|---|"]
        for name, field in cls.model_fields.items():
            if name not in common:
                lines.append(f"| `{prefix}{name.upper()}` | `{shown(field)}` | {field.description or ''} |")
    return "\n".join(lines) + "\n"


def page_with(generated: str, page: str) -> str:
    """The page with everything below its marker line replaced by `generated`."""
    by_hand, marker, _old = page.partition(MARKER)
    if not marker:
        raise SystemExit(f"{PAGE} has no marker line: {MARKER}")
    return f"{by_hand}{MARKER}\n\n{generated}"


def main() -> None:
    if sys.argv[1:] == ["--write"]:
        PAGE.write_text(page_with(table(), PAGE.read_text()))
        print(f"wrote the settings table into {PAGE}")
    else:
        print(table(), end="")


if __name__ == "__main__":
    main()
