"""vocoder component."""
