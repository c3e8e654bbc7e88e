"""Monitoring (issue 21): re-assess watched domains on a schedule and warn before mail breaks.

Layers, one way:

- `watchlist`: the TOML watch list, parsed into frozen settings (pure);
- `document`: typed readings of a stored assessment document (`mecsa assess --json`, the contract);
- `rules`: pure functions from (new document, earlier documents) to `Alert`s, each with its evidence
  and its exact fix from the fix catalogue (`mecsa.fixes`);
- `state`: the alerts' life cycle in the store (open, changed, resolved) and what each notifier was told;
- `notify`: stdout, e-mail over SMTP with STARTTLS (aiosmtplib), webhook JSON POST (HMAC-signed);
- `run`: one pass (`mecsa monitor run`) and the scheduler (`mecsa monitor daemon`);
- `api`: what the web service shows (the watch list and the alerts).
"""
