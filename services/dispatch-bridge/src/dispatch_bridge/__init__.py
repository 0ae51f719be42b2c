"""dispatch-bridge: forwards reports to the meldkamer and carries its answers back to the citizen."""
