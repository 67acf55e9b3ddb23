"""pgdecor in web frameworks and ORMs: the WSGI and ASGI middleware, Django, SQLAlchemy, FastAPI."""
