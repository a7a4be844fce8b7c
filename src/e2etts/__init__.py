"""e2etts: cascaded vs end-to-end trained discrete-token LLM TTS."""
__version__ = "0.1.0"
