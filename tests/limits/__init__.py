"""Time limits (`pgdecor._limits`): deadlines and slow calls."""
