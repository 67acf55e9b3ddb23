"""Rows into Python values: row types, column mapping, conversions psycopg does not do, COPY rows."""
