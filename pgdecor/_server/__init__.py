"""Throwaway PostgreSQL servers for tests, demos and checks: finding the programs, starting, stopping."""
