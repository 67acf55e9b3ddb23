"""Rows into Python values (`pgdecor._rows`): loads, types, row types of every model library."""
