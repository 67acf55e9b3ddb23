"""Notification channels: their names and payloads, and the listeners that read them on connections of their own."""
