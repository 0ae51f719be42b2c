"""Prints the README's settings table from the settings classes: `uv run python scripts/settings_table.py`."""

from __future__ import annotations

from burgermelding_shared.settings import PLACEHOLDER_PREFIX, ServiceSettings
from dispatch_bridge.config import BridgeSettings
from meldkamer_sim.config import MeldkamerSettings
from report_intake.config import IntakeSettings
from verification.config import VerificationSettings


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


def main() -> None:
    common = set(ServiceSettings.model_fields) - {"port"}
    print("Common to every service, with the service's prefix (e.g. `BM_INTAKE_DATABASE_URL`):\n")
    print("| setting | default | meaning |\n|---|---|---|")
    for name, field in ServiceSettings.model_fields.items():
        if name not in ("service_name", "port"):
            print(f"| `{name.upper()}` | `{shown(field)}` | {field.description or ''} |")
    for cls, prefix in [
        (IntakeSettings, "BM_INTAKE_"),
        (VerificationSettings, "BM_VERIFICATION_"),
        (BridgeSettings, "BM_BRIDGE_"),
        (MeldkamerSettings, "BM_MELDKAMER_"),
    ]:
        print(f"\n`{prefix}*` only:\n\n| setting | default | meaning |\n|---|---|---|")
        for name, field in cls.model_fields.items():
            if name not in common:
                print(f"| `{prefix}{name.upper()}` | `{shown(field)}` | {field.description or ''} |")


if __name__ == "__main__":
    main()
