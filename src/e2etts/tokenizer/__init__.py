"""tokenizer component."""
