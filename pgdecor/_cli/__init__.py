"""The ``pgdecor`` command: ``check``, ``generate``, ``demo``, and databases built from schema files.

Only `pgdecor.check` (`check.check`) is public API; nothing below this package imports it."""
