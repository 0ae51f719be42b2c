"""Burgernet actions and witness calls: started by a dispatcher or the meldkamer, published, answered, closed."""
