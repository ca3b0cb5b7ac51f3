"""hanzo-run: a declarative batch runner for LLM APIs."""

__version__ = "0.1.0"
