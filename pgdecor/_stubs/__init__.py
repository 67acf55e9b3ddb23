"""The decorators users write stubs with, and the callables they make: procedures, queries, channels, COPY."""
