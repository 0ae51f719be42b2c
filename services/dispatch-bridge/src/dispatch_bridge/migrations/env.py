from burgermelding_shared.migrations import run_env
from dispatch_bridge.models import metadata

run_env(metadata)
