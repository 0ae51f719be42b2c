from report_intake.cli import main

main()
