"""Where sessions get their connections: the kinds of source, a Database's configuration and pools, replicas."""
