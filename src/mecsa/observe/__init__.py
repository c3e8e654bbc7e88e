"""The observation layer: what the probes saw, made once and shared.

One assessment's `Context` memoises every observation (the MX set, each SMTP session and TLS sweep
per (host, IP, port), the TLSA lookups, the MTA-STS fetch), so that checks stay independent modules
without repeating network work. A scan hands every assessment one process-wide `SharedObservations`
(an observation cache with a TTL, and one per-IP connection limit), so that thousands of domains that
share an MX host cause one probe of it.

This package imports probes, dns and the result model; it never imports checks or anything above.
"""

from mecsa.observe.cache import ObservationCache
from mecsa.observe.context import AssessOptions, Context, SharedObservations

__all__ = ["AssessOptions", "Context", "ObservationCache", "SharedObservations"]
