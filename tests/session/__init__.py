"""Sessions (`pgdecor._session`): borrowing, committing, rolling back, giving back."""
