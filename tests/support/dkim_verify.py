#!/usr/bin/env python3
"""Verify the DKIM signature of a message with dkimpy, serving the public key
as the DNS TXT record `SELECTOR._domainkey.DOMAIN` would.

usage: dkim_verify.py FILE.eml PUBLIC.pem SELECTOR DOMAIN
Exit 0 when the signature verifies, 1 when not (dkimpy's reasons on stderr)."""
import base64
import logging
import sys

import dkim

eml, pub, selector, domain = sys.argv[1:5]
pem = open(pub).read()
der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")
if der.startswith(ED25519_SPKI):  # RFC 8463: p= is the raw 32-byte key
    k, p = "ed25519", der[len(ED25519_SPKI):]
else:  # RFC 6376: p= is the SubjectPublicKeyInfo
    k, p = "rsa", der
record = f"v=DKIM1; k={k}; p={base64.b64encode(p).decode()}".encode()
wanted = f"{selector}._domainkey.{domain}"


def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    if name.rstrip(".").lower() != wanted.lower():
        print(f"unexpected DNS query {name!r} (expected {wanted!r})", file=sys.stderr)
        return None
    return record


logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
ok = dkim.verify(open(eml, "rb").read(), logger=logging.getLogger("dkim"), dnsfunc=dnsfunc, minkey=1024)
print(f"{eml}: dkim {'pass' if ok else 'FAIL'} ({k})")
sys.exit(0 if ok else 1)
