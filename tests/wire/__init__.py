"""The lean call path (`pgdecor._wire`) and the psycopg internals it uses."""
