"""Time limits: the options in seconds, slow calls, and the deadlines of calls and sessions."""
