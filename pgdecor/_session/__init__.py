"""Sessions: their life and state, the current one, the scope that commits or rolls back, the lease of one borrowed
connection."""
