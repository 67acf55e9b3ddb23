"""The lean call path, and the only place where psycopg's and psycopg_pool's private names are touched."""
