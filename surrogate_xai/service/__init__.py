"""The REST service: ``create_app(settings)`` returns a FastAPI app (``sxai serve`` runs it).

Needs the ``service`` extra (``pip install 'surrogate-xai[service]'``); see ``docs/service.md``.
"""

from .app import create_app
from .engine import Engine
from .settings import API_KEYS_ENV, ServiceSettings

__all__ = ["API_KEYS_ENV", "Engine", "ServiceSettings", "create_app"]
