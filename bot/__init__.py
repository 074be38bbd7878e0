"""keydesk."""
