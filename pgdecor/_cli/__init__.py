"""The ``pgdecor`` command: ``check``, ``generate``, ``demo``, and databases built from schema files.

Never imported by the runtime."""
