"""DMARC policy discovery and organisational domains (RFC 9989 tree walk, RFC 7489 public suffix list)."""
