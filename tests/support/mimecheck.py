#!/usr/bin/env python3
"""Holds .eml files to the rules a mailbox provider applies, with Python's own
parser (the stdlib `email` package, policy.default) rather than gazette's.

usage: mimecheck.py [--bulk] FILE.eml ...

Each file gets one line, `FILE: ok TYPE [PARTS]` or `FILE: FAIL`, and then one
line `  ERROR RULE: detail` per problem. Exit 0 when every file is ok, 1 when
any is not, 2 when a file cannot be read.

Rules (the RULE names the tests match):
  parse-defect       a defect the parser recorded (message, part or header)
  missing-header     From, To, Date, Message-ID, Subject or MIME-Version absent
  duplicate-header   a header that may appear once appears more often
  bad-header         a header value of the wrong form (Date, Message-ID,
                     MIME-Version, From with other than one mailbox)
  non-ascii-header   raw 8-bit bytes in the header (RFC 5322 needs encoded words)
  line-too-long      a line over 998 octets, CRLF excluded (RFC 5322 2.1.1)
  line-endings       CRLF and bare LF (or a bare CR) mixed in one message
  structure          neither multipart/alternative with text/plain then
                     text/html, nor a single text/plain part
  charset            a text part with no charset, an unknown one, a body that
                     does not decode with it, or 8-bit bytes not declared 8bit
  list-unsubscribe   List-Unsubscribe not <URI>s; with --bulk: missing, or
                     without both an http(s) and a mailto: URI
  one-click          List-Unsubscribe-Post (RFC 8058) not exactly
                     `List-Unsubscribe=One-Click`, without an https URI or
                     without List-Unsubscribe; with --bulk: missing although
                     the link is https

--bulk: the message goes to a list (a digest), so RFC 2369/8058 unsubscribe
headers are required, as the big mailbox providers require of bulk senders.
"""
import argparse
import codecs
import email
import re
import sys
from email import policy

REQUIRED = ("From", "To", "Date", "Message-ID", "Subject", "MIME-Version")
# RFC 5322 3.6 (max one each) plus the MIME and list headers a message has once.
SINGLE = REQUIRED + (
    "Sender", "Reply-To", "Cc", "Bcc", "In-Reply-To", "References",
    "Content-Type", "Content-Transfer-Encoding", "List-Id",
    "List-Unsubscribe", "List-Unsubscribe-Post",
)
ENCODINGS = {"7bit", "8bit", "binary", "quoted-printable", "base64"}
MSG_ID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")


def header_block(raw):
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(sep)
        if at >= 0:
            return raw[:at]
    return raw


def check_lines(raw, problem):
    for n, line in enumerate(raw.split(b"\n"), 1):
        octets = len(line.rstrip(b"\r"))
        if octets > 998:
            problem("line-too-long", f"line {n} has {octets} octets")
            break
    crlf = raw.count(b"\r\n")
    bare_lf = raw.count(b"\n") - crlf
    bare_cr = raw.count(b"\r") - crlf
    if bare_cr or (crlf and bare_lf):
        problem("line-endings", f"{crlf} CRLF, {bare_lf} bare LF, {bare_cr} bare CR")
    head = header_block(raw)
    for n, line in enumerate(head.split(b"\n"), 1):
        if any(b >= 0x80 for b in line):
            problem("non-ascii-header", f"header line {n}: {line[:60]!r}")
            break


def check_headers(m, problem):
    for name in REQUIRED:
        if m.get_all(name) is None:
            problem("missing-header", name)
    for name in SINGLE:
        count = len(m.get_all(name) or [])
        if count > 1:
            problem("duplicate-header", f"{name} appears {count} times")
    for name, value in m.items():
        for d in getattr(value, "defects", ()):
            problem("parse-defect", f"header {name}: {type(d).__name__}: {d}")
    date = m.get("Date")
    if date is not None and getattr(date, "datetime", None) is None:
        problem("bad-header", f"Date {str(date)!r} is not an RFC 5322 date")
    mid = m.get("Message-ID")
    if mid is not None and not MSG_ID.match(str(mid).strip()):
        problem("bad-header", f"Message-ID {str(mid)!r} is not <left@right>")
    version = m.get("MIME-Version")
    if version is not None and str(version).strip() != "1.0":
        problem("bad-header", f"MIME-Version {str(version)!r} is not 1.0")
    sender = m.get("From")
    if sender is not None and len(getattr(sender, "addresses", ())) != 1:
        problem("bad-header", f"From {str(sender)!r} must hold one mailbox")


def check_parts(m, problem):
    """The leaves, in order, each with a declared, working charset."""
    leaves = []
    for part in m.walk():
        if part is not m:
            for d in part.defects:
                problem("parse-defect", f"{part.get_content_type()} part: {type(d).__name__}: {d}")
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        leaves.append(ctype)
        cte = part.get("Content-Transfer-Encoding")
        cte = str(cte).strip().lower() if cte is not None else "7bit"
        if cte not in ENCODINGS:
            problem("charset", f"{ctype}: unknown Content-Transfer-Encoding {cte!r}")
            continue
        if not ctype.startswith("text/"):
            continue
        charset = part.get_param("charset")
        if charset is None:
            problem("charset", f"{ctype}: no charset declared")
            continue
        try:
            codecs.lookup(str(charset))
        except LookupError:
            problem("charset", f"{ctype}: unknown charset {charset!r}")
            continue
        payload = part.get_payload(decode=True) or b""
        if cte in ("7bit", "quoted-printable", "base64"):
            raw_body = part.get_payload(decode=False)
            if isinstance(raw_body, str) and any(ord(c) >= 0x80 for c in raw_body):
                problem("charset", f"{ctype}: 8-bit body declared {cte}")
        try:
            payload.decode(str(charset))
        except UnicodeDecodeError as err:
            problem("charset", f"{ctype}: body is not {charset}: {err}")
    top = m.get_content_type()
    if top == "multipart/alternative":
        if leaves != ["text/plain", "text/html"]:
            problem("structure", f"multipart/alternative holds {leaves}, not [text/plain, text/html]")
    elif top != "text/plain":
        problem("structure", f"{top}: neither multipart/alternative nor text/plain")
    return leaves


def check_unsubscribe(m, bulk, problem):
    lu = m.get("List-Unsubscribe")
    post = m.get("List-Unsubscribe-Post")
    uris = []
    if lu is not None:
        text = " ".join(str(lu).split())
        items = [item.strip() for item in text.split(",")]
        for item in items:
            if not (item.startswith("<") and item.endswith(">") and len(item) > 2):
                problem("list-unsubscribe", f"{item!r} is not a <URI>")
            else:
                uris.append(item[1:-1])
    schemes = {u.split(":", 1)[0].lower() for u in uris}
    if bulk:
        if lu is None:
            problem("list-unsubscribe", "missing on a list message")
        else:
            if "mailto" not in schemes:
                problem("list-unsubscribe", "no mailto: URI")
            if not schemes & {"http", "https"}:
                problem("list-unsubscribe", "no web (https) URI")
        if post is None and "https" in schemes:
            problem("one-click", "List-Unsubscribe-Post missing beside an https link (RFC 8058)")
    if post is not None:
        if str(post).strip() != "List-Unsubscribe=One-Click":
            problem("one-click", f"List-Unsubscribe-Post is {str(post)!r}")
        if lu is None:
            problem("one-click", "List-Unsubscribe-Post without List-Unsubscribe")
        elif "https" not in schemes:
            problem("one-click", "one-click needs an https URI in List-Unsubscribe")


def check(path, bulk):
    with open(path, "rb") as f:
        raw = f.read()
    errors = []

    def problem(rule, detail):
        errors.append((rule, detail))

    check_lines(raw, problem)
    m = email.message_from_bytes(raw, policy=policy.default)
    for d in m.defects:
        problem("parse-defect", f"message: {type(d).__name__}: {d}")
    check_headers(m, problem)
    leaves = check_parts(m, problem)
    check_unsubscribe(m, bulk, problem)
    if errors:
        print(f"{path}: FAIL")
    else:
        print(f"{path}: ok {m.get_content_type()} [{', '.join(leaves)}]")
    for rule, detail in errors:
        print(f"  ERROR {rule}: {detail}")
    return not errors


def main():
    ap = argparse.ArgumentParser(description="Check .eml files (see the module doc).")
    ap.add_argument("--bulk", action="store_true", help="a list message: unsubscribe headers required")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    ok = True
    for path in a.files:
        try:
            ok &= check(path, a.bulk)
        except OSError as err:
            print(f"{path}: cannot read: {err}", file=sys.stderr)
            sys.exit(2)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
