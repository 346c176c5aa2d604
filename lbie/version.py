"""The package's version, in a module of its own: :func:`lbie.utils.provenance` reads it without importing
the whole package."""
__version__ = "0.1.0"
