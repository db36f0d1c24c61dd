"""Python peer for `gazette feeds build` as a whole process (issue 12).

Usage: feedgen_pipeline.py CONTENT_DIR OUT_DIR BASE_URL

What a small Python site would do with the same content folder: read every
issue.toml and article file, parse the TOML front matter (tomllib) or the
clipping's head (title, date line, byline), turn Markdown into HTML
(python-markdown), sanitize it (nh3: ammonia, the library gazette uses,
so the peer is not handicapped by a slow sanitizer), and write RSS 2.0 and
Atom 1.0 with feedgen, one entry per article, newest first. It is timed from
outside, interpreter start-up included, as gazette is.
"""
import datetime
import html
import os
import sys
import tomllib

import markdown
import nh3
from feedgen.feed import FeedGenerator


def clipping(text):
    """Title, date line, 'From ...' line, 'by ...' line, then paragraphs."""
    blocks = [b.strip() for b in text.split("\n\n") if b.strip()]
    title, rest = blocks[0], blocks[1:]
    author = None
    body = []
    for b in rest:
        if author is None and b.startswith("by "):
            author = b[3:]
        elif b.startswith("From the ") or (not body and b[:1].isupper() and b[-4:].isdigit()):
            continue
        else:
            body.append(f"<p>{html.escape(b)}</p>")
    return {"title": title, "author": author}, "\n".join(body)


def front_matter(text):
    _, head, body = text.split("+++", 2)
    return tomllib.loads(head), markdown.markdown(body)


def main():
    content, out, base = sys.argv[1], sys.argv[2], sys.argv[3]
    entries = []
    for slug in sorted(os.listdir(content)):
        folder = os.path.join(content, slug)
        if not os.path.isdir(folder):
            continue
        with open(os.path.join(folder, "issue.toml"), "rb") as f:
            issue = tomllib.load(f)
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.endswith(".md"):
                with open(path, encoding="utf-8") as f:
                    meta, body = front_matter(f.read())
            elif name.endswith(".txt"):
                with open(path, encoding="utf-8") as f:
                    meta, body = clipping(f.read())
            else:
                continue
            date = meta.get("date", issue["date"])
            when = datetime.datetime.combine(date, datetime.time(), datetime.timezone.utc)
            entries.append((when, slug, name, meta, nh3.clean(body)))
    entries.sort(key=lambda e: (e[0], e[1], e[2]), reverse=True)

    fg = FeedGenerator()
    fg.id(base + "feeds/atom.xml")
    fg.title("The Bench Ledger")
    fg.description("The Bench Ledger")
    fg.link(href=base, rel="alternate")
    fg.link(href=base + "feeds/atom.xml", rel="self")
    fg.updated(entries[0][0])
    for when, slug, name, meta, body in entries:
        url = f"{base}issues/{slug}/#{os.path.splitext(name)[0]}"
        fe = fg.add_entry(order="append")
        fe.id(url)
        fe.title(meta["title"])
        fe.link(href=url)
        if meta.get("author"):
            fe.author({"name": meta["author"]})
        fe.published(when)
        fe.updated(when)
        fe.content(body, type="CDATA")
        fe.description(body)
    os.makedirs(out, exist_ok=True)
    fg.rss_file(os.path.join(out, "rss.xml"))
    fg.atom_file(os.path.join(out, "atom.xml"))
    print(len(entries))


main()
