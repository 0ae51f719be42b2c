"""A simulated meldkamer (control room) that behaves like a real one, faults included."""
