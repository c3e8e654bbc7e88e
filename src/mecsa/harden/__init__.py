"""`mecsa harden`: generate and apply the top-score Postfix/OpenDKIM/OpenDMARC setup and its DNS records.

settings (validated input) -> pure generators (postfix, opendkim, opendmarc, policyd_spf, unbound,
mtasts_web, certbot, records, zone; put together by `files`; merged into what is there by
`conffile`, `tables` and `postfix_lists`) -> `apply` and `zone_apply`, the only modules that
write. `renewal` is the Certbot deploy hook `apply` installs (`python -m mecsa.harden.renewal`).
"""
