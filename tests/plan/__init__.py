"""What is derived once from a stub (`pgdecor._plan`): signature, statement, catalog, results."""
