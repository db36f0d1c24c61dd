#!/usr/bin/env python3
"""Write a synthetic archive for benchmarks: ISSUES folders, ARTICLES articles
in all (half Markdown, half clippings), each about 2 KB, deterministic.

usage: gen_archive.py OUT_DIR [ARTICLES=10000] [ISSUES=100]"""
import datetime
import os
import random
import sys

out = sys.argv[1]
n_articles = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
n_issues = int(sys.argv[3]) if len(sys.argv) > 3 else 100
rng = random.Random(42)
WORDS = ("harbour tide council rent wages dock crane ferry market school strike vote "
         "winter budget river bridge tenant union mayor quay fishing night shift lamp").split()


def sentence():
    w = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
    return " ".join(w).capitalize() + "."


def paragraph():
    return " ".join(sentence() for _ in range(rng.randint(3, 5)))


def body(target=2000):
    paras, size = [], 0
    while size < target:
        p = paragraph()
        paras.append(p)
        size += len(p) + 2
    return paras


os.makedirs(out, exist_ok=True)
start = datetime.date(2018, 1, 1)
per_issue = n_articles // n_issues
for i in range(n_issues):
    date = start + datetime.timedelta(days=14 * i)
    slug = f"{date.isoformat()}-issue-{i + 1:03d}"
    d = os.path.join(out, slug)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "issue.toml"), "w") as f:
        f.write(f'title = "Issue {i + 1}"\ndate = {date.isoformat()}\nnumber = {i + 1}\n')
    for a in range(per_issue):
        title = " ".join(rng.choice(WORDS) for _ in range(5)).title()
        if a % 2 == 0:
            with open(os.path.join(d, f"article-{a:03d}.md"), "w") as f:
                f.write(f'+++\ntitle = "{title}"\nauthor = "Writer {a % 17}"\ndate = {date.isoformat()}\nsection = "Section {a % 5}"\n+++\n\n')
                f.write("\n\n".join(body()) + "\n")
        else:
            with open(os.path.join(d, f"article-{a:03d}.txt"), "w") as f:
                f.write(f"{title}\n\n{date.strftime('%B')} {date.day}, {date.year}\n\nFrom the Issue {i + 1} issue of The Bench Ledger\n\nby Writer {a % 13}\n\n")
                f.write("\n\n".join(body()) + "\n")
print(f"wrote {n_issues} issues, {per_issue * n_issues} articles to {out}")
