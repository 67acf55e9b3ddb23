"""Running a stub's plan (`pgdecor._run`): batches, COPY, outcomes of calls, tracing."""
