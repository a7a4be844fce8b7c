"""llm component."""
