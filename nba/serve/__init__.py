"""The real-time decision service (`nba serve`): the same decisions as `nba score`, over HTTP.

- `decisions`: request customers → the validator → the one scoring path → decisions (pure);
- `writer`: the history writer thread (decisions batched off the request path, responses
  durable before they are acknowledged);
- `openapi`: the schemas, generated from `nba.data.schema` and the scoring columns;
- `app`: the FastAPI routes, metrics, access log and API key;
- `server`: the checks and the uvicorn run behind `nba serve`.

Importing this package does no work and imports no web framework.
"""

from __future__ import annotations
