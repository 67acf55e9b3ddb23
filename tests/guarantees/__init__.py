"""The promises of the guarantees table, tested from the outside: soaks, faults, hostile input."""
