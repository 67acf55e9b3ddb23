"""What the tests drive things with: HTTP servers, PgBouncer, pg_auto_failover, docs' examples."""
