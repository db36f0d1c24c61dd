"""Python feedgen peer: RSS 2.0 + Atom 1.0 from the entries gazette exported.

Usage: feedgen_bench.py ENTRIES.json [RUNS]
Loading the JSON and parsing dates is not timed; building the feed objects
and serializing both feeds is. Prints the best time in ms on the last line.
"""
import json
import sys
import time
from datetime import datetime

from feedgen.feed import FeedGenerator


def generate(feed, items):
    fg = FeedGenerator()
    home = feed["home_page_url"]
    fg.id(home + "feeds/atom.xml")
    fg.title(feed["title"])
    fg.description(feed["description"])
    fg.subtitle(feed["description"])
    fg.language(feed["language"])
    fg.link(href=feed["home_page_url"], rel="alternate")
    fg.link(href=home + "feeds/atom.xml", rel="self")
    fg.author({"name": feed["authors"][0]["name"]})
    fg.updated(items[0]["date"])
    fg.lastBuildDate(items[0]["date"])
    for item in items:
        fe = fg.add_entry(order="append")
        fe.id(item["id"])
        fe.guid(item["id"], permalink=False)
        fe.title(item["title"])
        fe.link(href=item["url"], rel="alternate")
        fe.summary(item["summary"])
        fe.description(item["summary"])
        fe.content(item["content_html"], type="CDATA")
        for author in item["authors"]:
            fe.author({"name": author["name"]})
        for tag in item.get("tags", []):
            fe.category({"term": tag})
        fe.published(item["date"])
        fe.updated(item["date"])
    rss = fg.rss_str(pretty=True)
    atom = fg.atom_str(pretty=True)
    return len(rss) + len(atom)


def main():
    path = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with open(path, encoding="utf-8") as f:
        feed = json.load(f)
    items = feed["items"]
    for item in items:
        item["date"] = datetime.fromisoformat(item["date_published"])
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        size = generate(feed, items)
        best = min(best, time.perf_counter() - start)
    print(f"feedgen: {len(items)} entries, {size / 1e6:.1f} MB (rss+atom)", file=sys.stderr)
    print(f"{best * 1000:.3f}")


if __name__ == "__main__":
    main()
