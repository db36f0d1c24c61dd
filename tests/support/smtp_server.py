#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) for the tests, with faults on demand.

Every accepted message is appended to OUT/log.jsonl as one JSON line
{"rcpt": [...], "mail_from": ..., "mail_options": [...], "message_id": ..., "size": ...}
and saved as OUT/msg/N.eml.

Faults (each optional):
  --tempfail-rcpt REGEX:K   recipients matching REGEX get "450 4.2.0" on their first K RCPTs
  --421-rcpt REGEX:K        ... "421 4.3.2 closing" on RCPT, then the connection is closed
  --bounce-rcpt REGEX       recipients matching REGEX get "550 5.1.1 no such user"
  --drop-data-every N       every Nth DATA: the connection is dropped before any reply
                            (the message is NOT kept: the client must send it again)
  --down                    accept TCP connections and close them at once
  --smtputf8                offer SMTPUTF8 (RFC 6531); without it the server does not

Prints "ready PORT" on stdout once it listens.
usage: smtp_server.py OUT [--port P] [faults...]
"""
import argparse
import asyncio
import itertools
import json
import logging
import os
import re
import sys
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, TLSSetupException

# --auth without TLS is what the AUTH tests ask for on 127.0.0.1, and
# aiosmtpd's own use of its deprecated Session.login_data is not ours: say
# nothing of either, so a passing test prints nothing that looks like a
# failure. Every other warning and error still reaches stderr.
EXPECTED = (
    "Requiring AUTH while not requiring TLS",
    "auth_required == True but auth_require_tls == False",
    "Session.login_data is deprecated",
)
warnings.filterwarnings("ignore", message=EXPECTED[0], category=UserWarning)
logging.getLogger("mail.log").addFilter(
    lambda record: not record.getMessage().startswith(EXPECTED)
)

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--tempfail-rcpt")
ap.add_argument("--421-rcpt", dest="r421")
ap.add_argument("--bounce-rcpt")
ap.add_argument("--drop-data-every", type=int, default=0)
ap.add_argument("--down", action="store_true")
ap.add_argument("--smtputf8", action="store_true")
ap.add_argument("--auth", help="USER:PASSWORD required (AUTH PLAIN/LOGIN; after TLS when --starttls or --tls)")
ap.add_argument("--starttls", help="CERT:KEY (PEM files): offer and require STARTTLS")
ap.add_argument("--tls", help="CERT:KEY (PEM files): implicit TLS from the first byte")
a = ap.parse_args()
os.makedirs(os.path.join(a.out, "msg"), exist_ok=True)


def rule(spec):
    if not spec:
        return None, 0
    pattern, _, k = spec.rpartition(":")
    return re.compile(pattern), int(k)


tempfail_re, tempfail_k = rule(a.tempfail_rcpt)
r421_re, r421_k = rule(a.r421)
bounce_re = re.compile(a.bounce_rcpt) if a.bounce_rcpt else None
seen = {}
data_count = itertools.count(1)
saved = itertools.count(1)
log = open(os.path.join(a.out, "log.jsonl"), "a", buffering=1)
# The recipients of each DATA dropped by --drop-data-every, one JSON list a
# line: which message a drop hits depends on timing, so tests count them here.
dropped = open(os.path.join(a.out, "dropped.jsonl"), "a", buffering=1)


class Handler:
    async def handle_exception(self, error):
        # A client that refuses the test certificate aborts the STARTTLS
        # handshake; the tests do that on purpose, so it is no traceback.
        # Anything else is logged in full, as aiosmtpd would.
        if isinstance(error, TLSSetupException):
            return "421 4.7.0 TLS handshake failed"
        logging.getLogger("mail.log").error("SMTP session exception", exc_info=error)
        return "500 Error: (%s) %s" % (type(error).__name__, error)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        n = seen[address] = seen.get(address, 0) + 1
        if bounce_re and bounce_re.search(address):
            return "550 5.1.1 <%s>: no such user" % address
        if tempfail_re and tempfail_re.search(address) and n <= tempfail_k:
            return "450 4.2.0 <%s>: mailbox busy, try later" % address
        if r421_re and r421_re.search(address) and n <= r421_k:
            asyncio.get_running_loop().call_later(0.005, server.transport.close)
            return "421 4.3.2 closing connection, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if a.drop_data_every and next(data_count) % a.drop_data_every == 0:
            dropped.write(json.dumps(envelope.rcpt_tos) + "\n")
            server.transport.abort()
            return "451 4.3.0 dropped (never seen by the client)"
        data = envelope.original_content or envelope.content
        m = re.search(rb"^Message-ID:\s*(\S+)", data, re.M | re.I)
        n = next(saved)
        with open(os.path.join(a.out, "msg", "%d.eml" % n), "wb") as f:
            f.write(data)
        log.write(json.dumps({"rcpt": envelope.rcpt_tos, "mail_from": envelope.mail_from,
                              "mail_options": envelope.mail_options, "message_id": m.group(1).decode() if m else None, "size": len(data)}) + "\n")
        return "250 2.0.0 Ok: queued as %d" % n


class DownProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        transport.close()


async def main():
    if a.down:
        server = await asyncio.get_running_loop().create_server(DownProtocol, "127.0.0.1", a.port)
        port = server.sockets[0].getsockname()[1]
    else:
        kwargs = {"data_size_limit": 50_000_000, "enable_SMTPUTF8": a.smtputf8}
        if a.auth:
            from aiosmtpd.smtp import AuthResult
            user, _, password = a.auth.partition(":")

            def check(server, session, envelope, mechanism, auth_data):
                ok = auth_data.login.decode() == user and auth_data.password.decode() == password
                return AuthResult(success=ok, handled=False)

            # With STARTTLS, AUTH is offered only once the session is
            # encrypted, as real submission servers do. With implicit TLS
            # the whole session is encrypted from the first byte (aiosmtpd
            # does not see that and would refuse AUTH); without TLS, it is
            # offered in the clear, on 127.0.0.1.
            kwargs.update(authenticator=check, auth_required=True,
                          auth_require_tls=bool(a.starttls))
        import ssl
        def context(spec):
            cert, _, key = spec.partition(":")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            return ctx
        extra = {}
        if a.starttls:
            kwargs.update(tls_context=context(a.starttls), require_starttls=True)
        if a.tls:
            extra["ssl_context"] = context(a.tls)
        controller = Controller(Handler(), hostname="127.0.0.1", port=a.port, decode_data=False,
                                server_kwargs=kwargs, **extra)
        # Controller binds in a thread; a port of 0 is resolved by binding ourselves first.
        if a.port == 0:
            import socket
            s = socket.socket(); s.bind(("127.0.0.1", 0)); controller.port = s.getsockname()[1]; s.close()
        controller.start()
        port = controller.port
    print("ready", port, flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
