"""joint component."""
