"""The conversation between the control room and a citizen about their report."""
