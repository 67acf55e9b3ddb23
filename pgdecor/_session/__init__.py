"""Sessions: the context variable, the scope that commits or rolls back, the lease of one borrowed connection."""
