#!/usr/bin/env python3
"""Read feed files as a feed reader does and print what it understood as JSON,
for the Rust tests to assert on.

RSS and Atom: feedparser, the parser most readers and aggregators use.
JSON Feed: feedparser 6.0 (the current release) has no JSON Feed parser, so
the file is read with the standard json module and held to the rules of the
JSON Feed 1.1 spec (https://jsonfeed.org/version/1.1); any breach sets bozo.

usage: read_feeds.py FILE...   ->  {"FILE": {"bozo": 0, "feed": {...}, "entries": [...]}}
"""
import datetime
import json
import re
import sys
import time

import feedparser


def when(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", t) if t else None


def links(obj):
    return [{"rel": l.get("rel"), "href": l.get("href"), "type": l.get("type")} for l in obj.get("links", [])]


def rfc3339(s, where, errors):
    if not isinstance(s, str) or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", s):
        errors.append(f"{where}: {s!r} is not an RFC 3339 date-time")
        return None
    t = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def absolute(u, where, errors):
    if u is not None and not re.match(r"https?://[^/]+", str(u)):
        errors.append(f"{where}: {u!r} is not an absolute URL")


def read_json_feed(path):
    errors = []
    d = json.load(open(path, encoding="utf-8"))
    if d.get("version") != "https://jsonfeed.org/version/1.1":
        errors.append(f"version is {d.get('version')!r}")
    if not isinstance(d.get("title"), str) or not d["title"]:
        errors.append("feed title missing")
    if not isinstance(d.get("items"), list):
        errors.append("items missing")
    for k in ("home_page_url", "feed_url"):
        absolute(d.get(k), k, errors)
    feed_authors = d.get("authors", [])
    entries, ids = [], set()
    for n, it in enumerate(d.get("items", [])):
        w = f"items[{n}]"
        if not isinstance(it.get("id"), str) or not it["id"]:
            errors.append(f"{w}.id must be a non-empty string")
        elif it["id"] in ids:
            errors.append(f"{w}.id {it['id']!r} repeats")
        ids.add(it.get("id"))
        if "content_html" not in it and "content_text" not in it:
            errors.append(f"{w}: content_html or content_text is required")
        absolute(it.get("url"), f"{w}.url", errors)
        authors = it.get("authors", feed_authors)
        if any(not isinstance(a, dict) or not any(k in a for k in ("name", "url", "avatar")) for a in authors):
            errors.append(f"{w}.authors: each needs name, url or avatar")
        entries.append({
            "id": it.get("id"),
            "title": it.get("title"),
            "title_type": "text/plain",
            "link": it.get("url"),
            "authors": [a.get("name") for a in authors if a.get("name")],
            "published": rfc3339(it["date_published"], f"{w}.date_published", errors) if "date_published" in it else None,
            "updated": rfc3339(it["date_modified"], f"{w}.date_modified", errors) if "date_modified" in it else None,
            "summary": it.get("summary"),
            "content": [it["content_html"]] if "content_html" in it else [],
            "tags": it.get("tags", []),
        })
    links = [{"rel": "self", "href": d.get("feed_url"), "type": "application/feed+json"}] if d.get("feed_url") else []
    return {
        "bozo": int(bool(errors)),
        "bozo_exception": "; ".join(errors),
        "version": "json11" if d.get("version", "").endswith("1.1") else "json",
        "feed": {"title": d.get("title"), "id": None, "link": d.get("home_page_url"), "links": links,
                 "updated": None, "language": d.get("language")},
        "entries": entries,
    }


out = {}
for path in sys.argv[1:]:
    if path.endswith(".json"):
        out[path] = read_json_feed(path)
        continue
    d = feedparser.parse(path)
    out[path] = {
        "bozo": int(bool(d.bozo)),
        "bozo_exception": str(d.get("bozo_exception", "")),
        "version": d.version,
        "feed": {
            "title": d.feed.get("title"),
            "id": d.feed.get("id"),
            "link": d.feed.get("link"),
            "links": links(d.feed),
            "updated": when(d.feed.get("updated_parsed")),
            "language": d.feed.get("language"),
        },
        "entries": [
            {
                "id": e.get("id"),
                "title": e.get("title"),
                "title_type": e.get("title_detail", {}).get("type"),
                "link": e.get("link"),
                "authors": [a.get("name") for a in e.get("authors", []) if a.get("name")],
                "published": when(e.get("published_parsed")),
                "updated": when(e.get("updated_parsed")),
                "summary": e.get("summary"),
                "content": [c.get("value") for c in e.get("content", [])],
                "tags": [t.get("term") for t in e.get("tags", [])],
            }
            for e in d.entries
        ],
    }
json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
