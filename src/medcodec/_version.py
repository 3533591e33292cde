"""The package version, in one place (imported by the facade, the CLI and the writers)."""

__version__ = "0.1.0"
