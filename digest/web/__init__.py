"""The web front: FastAPI app factory (app.py), the subscriber's pages (pages.py), and what guards
them (guard.py). Pages come from templates/web."""

from digest.web.app import Web, create_app

__all__ = ["Web", "create_app"]
