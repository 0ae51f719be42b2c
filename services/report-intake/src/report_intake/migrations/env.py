from burgermelding_shared.migrations import run_env
from report_intake.models import metadata

run_env(metadata)
