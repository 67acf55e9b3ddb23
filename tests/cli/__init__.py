"""The ``pgdecor`` command (`pgdecor._cli`): check, generate, schema files, generated corpora."""
