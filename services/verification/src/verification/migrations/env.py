from burgermelding_shared.migrations import run_env
from verification.models import metadata

run_env(metadata)
