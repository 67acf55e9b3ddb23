"""Where sessions get their connections: the `Source` protocol and its kinds (chosen once), a Database's
configuration and pools, the leak guard, replicas."""
