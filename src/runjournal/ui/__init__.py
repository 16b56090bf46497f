"""The web face: a read-only dashboard over any store (``runjournal ui``).

- :mod:`~runjournal.ui.app`: the Litestar app factory, :func:`create_app`;
- :mod:`~runjournal.ui.api`: the JSON API handlers;
- :mod:`~runjournal.ui.series`: ``/api/series`` from the rollup projection;
- :mod:`~runjournal.ui.live`: ``/api/events``, Server-Sent Events from ``journal.follow``;
- :mod:`~runjournal.ui.security`: Host check, token, methods, security headers;
- :mod:`~runjournal.ui.server`: uvicorn on a port, clean shutdown on SIGINT and SIGTERM;
- :mod:`~runjournal.ui.pages` and ``static/``: the HTML pages and their ES modules.

It needs the ``ui`` extra (``pip install 'runjournal[ui]'``: litestar, uvicorn).
"""

from runjournal.ui.app import UiApp, create_app

__all__ = ["UiApp", "create_app"]
