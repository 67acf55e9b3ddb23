"""Code as users write it, imported by the tests and by typings/: stubs, row types, services."""
