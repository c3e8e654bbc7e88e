"""DMARC aggregate (RFC 9990, RFC 7489 appendix C) and SMTP TLS (RFC 8460) report intake.

Layers, as in the rest of mecsa:

- `limits`, `unpack`, `mail`: bytes in (files, archives, mail, IMAP), bounded payloads out;
- `dmarc_xml`, `tlsrpt_json`: pure parsers, payload in, typed frozen records out (`model`);
- `storage`: where ingested reports live (SQLite by default, any SQLAlchemy URL);
- `intake`: the ingestion run (de-duplication, one clear error per bad report, the rest kept);
- `views`, `render`: typed summaries of the store, and text / JSON / HTML renderers;
- `join`: each failure class re-probed live with mecsa's own checks, and its fix;
- `events`: what a monitor can alert on (new unknown sources, TLS failure rates).
"""
