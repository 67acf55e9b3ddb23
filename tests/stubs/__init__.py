"""The stub decorators (`pgdecor._stubs`): async stubs, stubs as methods."""
