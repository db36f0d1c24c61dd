#!/usr/bin/env python3
"""A hostile SMTP server for the tests: it answers like a server until one
stage of the session, and there it misbehaves, in one of two ways:

  --trickle SECONDS   "250-" continuation lines, one every SECONDS, forever
  --flood BYTES       BYTES of "250-" continuation lines as fast as the
                      client takes them, then a final "250 ok"

  --stage ehlo        ...in its reply to EHLO (the default)
  --stage data        ...in its reply to the end of a message (after DATA)
  --tls CERT:KEY      implicit TLS (PEM files), as on port 465

Events go to OUT/events.log, one a line: "connect", "misbehaving",
"flooded N" (bytes written), "closed". Prints "ready PORT" once it listens.
usage: hostile_smtp.py OUT [--port P] (--trickle S | --flood N) [--stage ehlo|data] [--tls C:K]
Standard library only.
"""
import argparse
import asyncio
import os

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--stage", choices=["ehlo", "data"], default="ehlo")
ap.add_argument("--tls")
how = ap.add_mutually_exclusive_group(required=True)
how.add_argument("--trickle", type=float)
how.add_argument("--flood", type=int)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
events = open(os.path.join(a.out, "events.log"), "a", buffering=1)


def event(what):
    events.write(what + "\n")


async def misbehave(writer):
    event("misbehaving")
    if a.trickle is not None:
        while not writer.is_closing():
            writer.write(b"250-still thinking about it\r\n")
            await writer.drain()
            await asyncio.sleep(a.trickle)
    else:
        line = b"250-" + b"x" * 90 + b"\r\n"
        block = line * 10_000
        sent = 0
        try:
            while sent < a.flood:
                writer.write(block)
                await writer.drain()
                sent += len(block)
            writer.write(b"250 ok\r\n")
            await writer.drain()
        finally:
            event("flooded %d" % sent)


async def session(reader, writer):
    event("connect")
    try:
        writer.write(b"220 hostile.test ESMTP\r\n")
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = line.decode("latin-1").strip().upper()
            if cmd.startswith("EHLO"):
                if a.stage == "ehlo":
                    await misbehave(writer)
                    break
                writer.write(b"250-hostile.test\r\n250 8BITMIME\r\n")
            elif cmd.startswith(("HELO", "MAIL", "RCPT", "RSET", "NOOP")):
                writer.write(b"250 ok\r\n")
            elif cmd == "DATA":
                writer.write(b"354 go on\r\n")
                await writer.drain()
                while True:
                    body = await reader.readline()
                    if not body or body == b".\r\n":
                        break
                if a.stage == "data":
                    await misbehave(writer)
                    break
                writer.write(b"250 2.0.0 ok\r\n")
            elif cmd == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"502 5.5.2 not implemented\r\n")
            await writer.drain()
    except (ConnectionError, ValueError):
        pass
    finally:
        event("closed")
        writer.close()


async def main():
    context = None
    if a.tls:
        import ssl
        cert, _, key = a.tls.partition(":")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    server = await asyncio.start_server(session, "127.0.0.1", a.port, ssl=context)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
