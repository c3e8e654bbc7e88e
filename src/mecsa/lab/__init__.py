"""The lab: real DNS and mail servers in network namespaces, driven by scenario files.

`mecsa lab up` builds a private network (a bridge in one namespace, one namespace per server,
addresses in 10.53.0.0/24 that exist only inside those namespaces, no default route) and runs:
Knot (a DNSSEC-signed fake root, TLDs and scenario zones), a validating Unbound, an HTTPS server
for MTA-STS policies, one Postfix MX per mail host with OpenDKIM, OpenDMARC and policyd-spf,
and a sender Postfix that delivers with DANE. Every daemon logs under the lab directory; the
state file there lets `mecsa lab down` remove everything, also after a failed `up`.
"""
