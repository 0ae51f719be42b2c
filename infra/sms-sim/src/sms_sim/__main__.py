from sms_sim.main import main

main()
