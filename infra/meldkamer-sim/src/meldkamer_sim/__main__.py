from meldkamer_sim.cli import main

main()
