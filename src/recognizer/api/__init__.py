"""The HTTP API: app factory, routes, and the one error-to-HTTP mapping."""

from recognizer.api.app import create_app

__all__ = ["create_app"]
