"""A report's life at the bridge: it arrives from intake (and again with every revision), verification judges it,
its citizen may withdraw it."""
