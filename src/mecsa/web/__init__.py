"""The web service (`mecsa serve`): FastAPI pages and REST API over the same engine and store as the CLI.

- `app.create_app(settings)` builds the ASGI application;
- `jobs` runs assessments in the background and streams their progress (server-sent events);
- `guard` keeps the service from connecting to internal addresses of a target;
- `security` adds the headers (CSP with a per-request nonce, HSTS behind TLS) and bounds requests;
- `pages` and `api` are the two faces; `history` and `stats` are pure views over stored documents.
"""
