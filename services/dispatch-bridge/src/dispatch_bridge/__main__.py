from dispatch_bridge.cli import main

main()
