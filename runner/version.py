"""hanzo-run's version: one module of its own, so anything can import it without importing the package's
public API (runner/__init__.py), which sits above every layer."""

__version__ = "0.1.0"
