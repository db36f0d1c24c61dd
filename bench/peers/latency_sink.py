#!/usr/bin/env python3
"""An SMTP sink as far away as a remote relay: every reply leaves RTT
milliseconds after the bytes that asked for it arrived, as over a network
with that round-trip time (the requests themselves arrive at once).
Offers PIPELINING and, unless --no-chunking, CHUNKING (RFC 3030: BDAT).
Accepts everything and keeps nothing; counts messages.

    python3 bench/peers/latency_sink.py PORT RTT_MS [--no-chunking]

Prints "ready" once it listens; on SIGTERM prints "messages N".
Standard library only.
"""
import asyncio
import signal
import sys

port, rtt = int(sys.argv[1]), float(sys.argv[2]) / 1000
chunking = "--no-chunking" not in sys.argv
messages = 0


class Session(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.buf = bytearray()
        self.mode = "cmd"  # or "data" (to CRLF.CRLF) or "bdat" (left bytes)
        self.left = 0
        self.last = False
        self.reply(b"220 far.example ESMTP\r\n")

    def reply(self, data):
        loop = asyncio.get_running_loop()
        loop.call_later(rtt, lambda: self.t.is_closing() or self.t.write(data))

    def data_received(self, data):
        global messages
        self.buf += data
        out = bytearray()
        while True:
            if self.mode == "bdat":
                take = min(self.left, len(self.buf))
                del self.buf[:take]
                self.left -= take
                if self.left:
                    break
                self.mode = "cmd"
                messages += self.last
                out += b"250 2.0.0 ok\r\n"
            elif self.mode == "data":
                end = self.buf.find(b"\r\n.\r\n")
                if end < 0:
                    # Keep the tail that could start the end marker.
                    del self.buf[: max(0, len(self.buf) - 4)]
                    break
                del self.buf[: end + 5]
                self.mode = "cmd"
                messages += 1
                out += b"250 2.0.0 ok\r\n"
            else:
                nl = self.buf.find(b"\n")
                if nl < 0:
                    break
                line = bytes(self.buf[: nl + 1]).decode("latin-1").strip()
                del self.buf[: nl + 1]
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    out += b"250-far.example\r\n250-PIPELINING\r\n"
                    if chunking:
                        out += b"250-CHUNKING\r\n"
                    out += b"250 8BITMIME\r\n"
                elif verb == "DATA":
                    self.mode = "data"
                    out += b"354 go on\r\n"
                elif verb == "BDAT":
                    parts = line.split()
                    self.left = int(parts[1])
                    self.last = len(parts) > 2 and parts[2].upper() == "LAST"
                    self.mode = "bdat"
                elif verb == "QUIT":
                    out += b"221 bye\r\n"
                    self.reply(bytes(out))
                    asyncio.get_running_loop().call_later(rtt * 2, self.t.close)
                    return
                else:
                    out += b"250 ok\r\n"
        if out:
            self.reply(bytes(out))


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Session, "127.0.0.1", port)
    done = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, done.set_result, None)
    print("ready", flush=True)
    await done
    server.close()
    print("messages", messages, flush=True)


asyncio.run(main())
