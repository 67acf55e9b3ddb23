"""Running a stub's plan on its session's connection: a call, a batch, a stream, a COPY; what calls learn and trace."""
