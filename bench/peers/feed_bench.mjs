// npm `feed` peer: RSS 2.0 + Atom 1.0 from the entries gazette exported.
//
// Usage: node feed_bench.mjs ENTRIES.json [RUNS]
// Loading the JSON and parsing dates is not timed; building the Feed object
// and serializing both feeds is. Prints the best time in ms on the last line.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Feed } from "feed";

const [path, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 3);
const feed = JSON.parse(readFileSync(path, "utf8"));
const items = feed.items.map((item) => ({ ...item, date: new Date(item.date_published) }));

function generate() {
  const f = new Feed({
    id: new URL("feeds/atom.xml", feed.home_page_url).href,
    title: feed.title,
    description: feed.description,
    link: feed.home_page_url,
    language: feed.language,
    generator: "feed",
    updated: items[0].date,
    feedLinks: {
      atom: new URL("feeds/atom.xml", feed.home_page_url).href,
      rss: new URL("feeds/rss.xml", feed.home_page_url).href,
    },
    author: { name: feed.authors[0].name },
    copyright: "",
  });
  for (const item of items) {
    f.addItem({
      id: item.id,
      guid: item.id,
      title: item.title,
      link: item.url,
      description: item.summary,
      content: item.content_html,
      author: item.authors.map((a) => ({ name: a.name })),
      category: (item.tags ?? []).map((name) => ({ name })),
      date: item.date,
      published: item.date,
    });
  }
  const rss = f.rss2();
  const atom = f.atom1();
  return rss.length + atom.length;
}

let best = Infinity;
let size = 0;
for (let i = 0; i < runs; i++) {
  const start = performance.now();
  size = generate();
  best = Math.min(best, performance.now() - start);
}
console.error(`feed: ${items.length} entries, ${(size / 1e6).toFixed(1)} M chars (rss+atom)`);
console.log(best.toFixed(3));
