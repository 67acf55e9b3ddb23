"""Where sessions get their connections (`pgdecor._sources`): pools, replicas, bounded waits."""
