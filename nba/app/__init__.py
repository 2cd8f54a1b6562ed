"""The Voila app for user-acceptance testing.

- `nba.app.widgets`: `build_app()` and `App`, the widgets and their callbacks (the customer
  card, the form, what-if, batch upload, segments, model card);
- `nba.app.views`: what the page shows, as HTML text (pure functions);
- `nba.app.server`: the Voila command, `serve` (for `nba app`) and `Server` (tests, benches).
"""

from nba.app.server import (
    BUNDLE_ENV,
    DEFAULT_BUNDLE,
    EXECUTOR_TIMEOUT,
    IOPUB_TIMEOUT,
    READY_LINE,
    Server,
    app_environment,
    bundle_path,
    free_port,
    serve,
    voila_command,
)
from nba.app.views import BAND_COLOURS, banner_html, card_html, percent
from nba.app.widgets import (
    DERIVED,
    FIELD_GROUPS,
    LABELS,
    SHOWN_ROWS,
    UPLOAD_LIMIT,
    WHAT_IF,
    App,
    Base,
    build_app,
    derived_fields,
    field_problems,
    load_base,
)

__all__ = [
    "BAND_COLOURS",
    "BUNDLE_ENV",
    "DEFAULT_BUNDLE",
    "DERIVED",
    "EXECUTOR_TIMEOUT",
    "FIELD_GROUPS",
    "IOPUB_TIMEOUT",
    "LABELS",
    "READY_LINE",
    "SHOWN_ROWS",
    "UPLOAD_LIMIT",
    "WHAT_IF",
    "App",
    "Base",
    "Server",
    "app_environment",
    "banner_html",
    "build_app",
    "bundle_path",
    "card_html",
    "derived_fields",
    "field_problems",
    "free_port",
    "load_base",
    "percent",
    "serve",
    "voila_command",
]
