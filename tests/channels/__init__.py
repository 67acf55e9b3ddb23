"""Notification channels (`pgdecor._channels`): notify stubs and listeners."""
