"""Our own DNSSEC validation: trust anchors (`anchors`), the chain walk (`walker`), denial proofs
(`denial`), algorithm strength (`strength`) and the verdict with its named link (`verdict`).

Nothing is re-exported here, so that importing `verdict` (the resolver does, for every command)
does not load dns.dnssec and the walker: they are loaded when a resolver validates.
"""
