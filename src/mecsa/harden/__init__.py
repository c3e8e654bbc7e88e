"""`mecsa harden`: generate and apply the top-score Postfix/OpenDKIM/OpenDMARC setup and its DNS records.

settings (validated input) -> pure generators (postfix, opendkim, opendmarc, policyd_spf, unbound,
records; put together by `files`) -> `apply`, the only module that writes.
"""
