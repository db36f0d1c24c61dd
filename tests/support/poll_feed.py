#!/usr/bin/env python3
"""Poll a feed over HTTP twice as a feed reader does, with feedparser: the
first poll fetches it; the second sends back the validators (ETag and
Last-Modified) the first one got, which a server that supports them answers
with 304 Not Modified. Prints what feedparser saw as JSON.

usage: poll_feed.py URL  ->  {"first": {...}, "second": {...}}
"""
import json
import sys

import feedparser


def seen(d):
    return {
        "status": d.get("status"),
        "bozo": int(bool(d.get("bozo"))),
        "bozo_exception": str(d.get("bozo_exception", "")),
        "version": d.get("version"),
        "etag": d.get("etag"),
        "modified": d.get("modified"),
        "content_type": d.get("headers", {}).get("content-type"),
        "content_encoding": d.get("headers", {}).get("content-encoding"),
        "feed_title": d.get("feed", {}).get("title"),
        "titles": [e.get("title") for e in d.get("entries", [])],
        "ids": [e.get("id") for e in d.get("entries", [])],
    }


url = sys.argv[1]
first = feedparser.parse(url)
second = feedparser.parse(url, etag=first.get("etag"), modified=first.get("modified"))
print(json.dumps({"first": seen(first), "second": seen(second)}))
