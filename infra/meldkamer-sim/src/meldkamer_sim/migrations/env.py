from burgermelding_shared.migrations import run_env
from meldkamer_sim.models import metadata

run_env(metadata)
