"""Probes: the network I/O of the transport checks. Each returns a frozen observation, nothing judged.

- `smtp`: one SMTP session to one address (banner, EHLO, STARTTLS, TLS handshake, chain, QUIT).
- `tls`: the TLS version sweep and the weak-cipher trials, each its own short STARTTLS session.
- `https`: the MTA-STS policy fetch; `https_client` makes its requests with httpx, in this process or
  in the cold CLI's helper process (`https_helper`).
"""
