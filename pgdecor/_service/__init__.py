"""What a service opens once: a `Database`, its units of work and their retry policy."""
