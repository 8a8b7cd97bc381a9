"""Engine drivers: one wire protocol each (GTP, UCI, line protocol)."""
