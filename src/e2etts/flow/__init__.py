"""flow component."""
