"""secstack tooling: the command line, the offline preview and the service-side libraries."""

__version__ = "0.1.0"
