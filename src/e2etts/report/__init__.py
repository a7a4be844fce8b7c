"""report component."""
