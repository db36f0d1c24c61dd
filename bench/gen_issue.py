"""The benches' issue and readers: WORK/content/bench-issue (dated today)
and WORK/subscribers.csv with N readers, all active when imported.

    python3 bench/gen_issue.py WORK N             4 articles, ~20 KB of text
    python3 bench/gen_issue.py WORK N --small     one short article
    python3 bench/gen_issue.py WORK N --domain bench.example.net
"""
import argparse
import datetime
import os

p = argparse.ArgumentParser()
p.add_argument("work")
p.add_argument("n", type=int)
p.add_argument("--small", action="store_true")
p.add_argument("--domain", default="bench.example.org")
a = p.parse_args()

d = os.path.join(a.work, "content", "bench-issue")
os.makedirs(d, exist_ok=True)
today = datetime.date.today().isoformat()
with open(os.path.join(d, "issue.toml"), "w") as f:
    f.write(f'title = "Bench issue"\ndate = {today}\n')
if a.small:
    with open(os.path.join(d, "a.md"), "w") as f:
        f.write(f'+++\ntitle = "The quay"\ndate = {today}\n+++\n\nThe ferry ran late again.\n')
else:
    para = ("The harbour trust met on Tuesday and the ferry timetable was, once again, the first item. " * 6).strip()
    for i in range(4):
        with open(os.path.join(d, f"article-{i}.md"), "w") as f:
            f.write(f'+++\ntitle = "Article {i}"\nauthor = "Writer {i}"\ndate = {today}\n+++\n\n')
            f.write("\n\n".join([para] * 3) + "\n")
with open(os.path.join(a.work, "subscribers.csv"), "w") as f:
    f.write("email,name\n")
    for i in range(a.n):
        f.write(f"reader{i}@{a.domain},Reader {i}\n")
