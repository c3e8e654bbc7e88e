"""Mail mode: grade a provider from the mail it receives and sends, as MECSA's web tool does.

- `receiver`: the SMTP receiver for a test domain (aiosmtpd); records, analyses and stores.
- `analysis`, `dkimverify`, `dmarceval`, `headers`: the judgement of one received message.
- `outbound`: the sender's verdicts (starttls, spf, dkim, dmarc), scored like a domain.
- `probe`: the probe mail to the user's MX, recording the inbound side (STARTTLS, TLS, DANE).
- `enforcement`: the DANE and MTA-STS trap zone and the "enforces / does not enforce" verdicts.
- `connections`: every SMTP connection the receiver saw (the DANE trap's positive evidence).
- `grade`: the provider grade, inbound + outbound, under mecsa-st's combination and mecsa's rule.
- `autoreply`, `signing`: the RFC 3834 auto-reply and the test domain's DKIM signing (probe, reply).
- `service`: the typed entry point for the web (start a probe, live state, the provider report).
- `store`, `report`: the SQLite store of entries per token and the report built from them.
- `addresses`: which addresses the receiver accepts, and why (the table is there).
"""
