"""The dispatchers' and supervisors' API: lists, decisions on reports and incidents, delivery and dead letters."""
