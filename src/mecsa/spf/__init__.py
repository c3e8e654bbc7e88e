"""SPF (RFC 7208): a pure record parser, macro expansion, check_host() and the worst-case audit."""

from mecsa.spf.evaluator import SpfOutcome, SpfResult, check_host, check_sender
from mecsa.spf.parser import SpfRecord, SpfSyntaxError, parse_record

__all__ = [
    "SpfOutcome",
    "SpfRecord",
    "SpfResult",
    "SpfSyntaxError",
    "check_host",
    "check_sender",
    "parse_record",
]
