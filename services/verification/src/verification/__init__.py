"""verification: checks citizens' photos and reports and gives a verdict with reasons."""
