"""LLM providers (OpenAI, Anthropic, Gemini; offline rule templates) behind one interface: a leaf app."""
