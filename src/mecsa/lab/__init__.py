"""The lab: real DNS and mail servers in network namespaces, driven by scenario files.

`mecsa lab up` builds a private network (a bridge in one namespace, one namespace per server,
addresses in 10.53.0.0/24 that exist only inside those namespaces, no default route) and runs:
Knot (a DNSSEC-signed fake root, TLDs and scenario zones), a validating Unbound, an HTTPS server
for MTA-STS policies, one Postfix MX per mail host with OpenDKIM, OpenDMARC and policyd-spf,
and a sender Postfix that delivers with DANE. Every daemon logs under the lab directory; the
state file there lets `mecsa lab down` remove everything, also after a failed `up`.

The code has three layers; imports point down only (tests/unit/lab/test_lab_imports.py checks it):

- plan: pure data. `scenario` (the TOML format), `plan` (every node, name and address; which
  sender and MX host goes where), `state` (the state file), `programs` (what must be installed);
- builders: write keys, certificates, zones and configurations and say which daemons to start.
  `ca`, `zones` (the one zone builder), `knot`, `unbound`, `postfix`, `milters`, `mxconfig` (an MX
  configured by `mecsa harden apply`), `senders` (every sender Postfix), `receiver` (mail mode's
  receiver), `daemon` (what to start), `build` (all of it for one plan);
- runner: `netns` and `runner` (namespaces, processes, `up`/`down`/`status`/`run_in`) and
  `mailflow` (the one `send`, from any sender, and following the mail).

`logsink` and `web` are the small servers the runner starts with `python -m`; they import nothing
of the lab.
"""
