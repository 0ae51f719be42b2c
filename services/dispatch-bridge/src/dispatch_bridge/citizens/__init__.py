"""What the citizen hears of their report (the timeline's news) and the conversation with the control room."""
