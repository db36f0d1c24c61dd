#!/usr/bin/env python3
"""Write a subscriber list as CSV (email,name,status) for bench/admin.sh.

    python3 bench/gen_subscribers.py OUT.csv [COUNT]    (default 1,000,000)

Deterministic (seeded). Names come from several scripts and languages
(Latin with diacritics, Nordic, Turkish, Greek, Cyrillic, Vietnamese,
Japanese), addresses from the name's ASCII spelling plus a number, at
example.org / example.net / example.com and a few subdomains: the import
checks each one as every entry point does. Statuses: 70 % active, 10 %
pending, 15 % unsubscribed, 5 % bounced. One row in 100,000 is a marker
that the bench searches for: "Ødegård Bjørnstjerne-N" at
"bjornstjerne.odegard.N@example.net".
"""

import csv
import random
import sys
import unicodedata

FIRST = [
    "Ann", "Émile", "Zoë", "José", "François", "Łucja", "Søren", "Åsa", "Jürgen",
    "Çağla", "Ingrid", "Nguyễn Thị", "Marta", "Oğuz", "Siobhán", "Björk", "Dorothée",
    "Мария", "Иван", "Алексей", "Ольга", "Νίκος", "Ελένη", "Γιώργος", "Σοφία",
    "さくら", "Hiroshi", "Aleksandra", "Tomás", "Inês", "Raúl", "Zuzana", "Miloš",
    "Kateřina", "Ágnes", "Gábor", "Pål", "Eirík", "Ülkü", "Leilani", "Kwame", "Amara",
    "Priya", "Wei", "Ming", "Olusegun", "Chidi", "Astrid", "Henrik", "Noor",
]
LAST = [
    "Lee", "Zola", "Álvarez", "Müller", "Øster", "Ødegaard", "Kowalska", "Nørgaard",
    "Yılmaz", "Öztürk", "Ó Súilleabháin", "Dvořák", "Novák", "Szabó", "Kovács",
    "Петров", "Иванова", "Смирнов", "Кузнецова", "Παπαδόπουλος", "Γεωργίου",
    "Οικονόμου", "Trần", "Phạm", "Lê", "山田", "Tanaka", "Sato", "Fernández",
    "García", "Gonçalves", "Brontë", "Dubois", "Lefèvre", "Šimková", "Jankowski",
    "Björnsson", "Haraldsdóttir", "Mensah", "Okafor", "Sharma", "Zhang", "Wang",
    "van der Berg", "O'Brien", "D'Angelo", "Smith-Jones", "Kaʻahumanu",
]
CYRILLIC = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                    "a b v g d e e zh z i y k l m n o p r s t u f h ts ch sh sch - y - e yu ya".split()))
GREEK = dict(zip("αβγδεζηθικλμνξοπρσςτυφχψωάέήίόύώ",
                 "a v g d e z i th i k l m n x o p r s s t y f ch ps o a e i i o y o".split()))
DOMAINS = ["example.org", "example.net", "example.com", "mail.example.org", "post.example.net"]
STATUSES = ["active"] * 14 + ["pending"] * 2 + ["unsubscribed"] * 3 + ["bounced"]


def ascii_of(text):
    out = []
    for ch in text.lower():
        ch = CYRILLIC.get(ch, GREEK.get(ch, ch))
        ch = {"ø": "o", "æ": "ae", "å": "a", "ß": "ss", "ł": "l", "ı": "i", "đ": "d"}.get(ch, ch)
        ch = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        out.append("".join(c for c in ch if c.isalnum()))
    return "".join(out)


def main():
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    rng = random.Random(11)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["email", "name", "status"])
        for i in range(count):
            if i % 100_000 == 50_000:
                n = i // 100_000
                w.writerow([f"bjornstjerne.odegard.{n}@example.net",
                            f"Ødegård Bjørnstjerne-{n}", "active"])
                continue
            first, last = rng.choice(FIRST), rng.choice(LAST)
            local = f"{ascii_of(first) or 'reader'}.{ascii_of(last) or 'reader'}{i}"
            w.writerow([f"{local}@{rng.choice(DOMAINS)}", f"{first} {last}", rng.choice(STATUSES)])


if __name__ == "__main__":
    main()
