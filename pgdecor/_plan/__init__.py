"""Everything derived once from a stub, without I/O: its parameters, statement and result, matched to the catalog."""
