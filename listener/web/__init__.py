"""The live view (``listener serve``): a Starlette app under uvicorn.

    app.py      LiveApp (what every request reads), the routes, create_app and its
                register(app) hook for route modules (routes_charts.py)
    access.py   the access rules, as one middleware
    render.py   Jinja2 templates (templates/, autoescape on) and the safe-text filters
    server.py   LiveServer: uvicorn on a socket bound first
    static/     CSS and scripts, served from the package (no CDN, works offline)
"""

from listener.web.access import bind_refusal, is_loopback, session_value, tokens_match
from listener.web.app import LiveApp, create_app
from listener.web.server import LiveServer, start_in_thread

__all__ = ["LiveApp", "LiveServer", "bind_refusal", "create_app", "is_loopback", "session_value", "start_in_thread",
           "tokens_match"]
