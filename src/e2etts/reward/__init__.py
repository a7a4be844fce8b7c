"""reward component."""
