// Open one URL in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser of Playwright's own) and print what the page
// shows as one JSON line:
//   {"url", "status", "contentType", "title", "text"}
//
// usage: node tests/browser/smoke.mjs URL
// env:   GZ_CHROMIUM  the browser binary (default /usr/bin/chromium)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const url = process.argv[2];
if (!url) {
  console.error("usage: node smoke.mjs URL");
  process.exit(2);
}

// A fresh profile each run, removed afterwards.
const profile = mkdtempSync(join(tmpdir(), "gazette-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.GZ_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // The machine has no network but loopback: keep Chromium from calling
    // home (its refused connections are slow and noisy).
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
    ],
    timeout: 60_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const response = await page.goto(url, { waitUntil: "load", timeout: 30_000 });
  const result = {
    url: page.url(),
    status: response ? response.status() : null,
    contentType: response ? (response.headers()["content-type"] ?? null) : null,
    title: await page.title(),
    text: await page.evaluate(() => document.documentElement.textContent ?? ""),
  };
  console.log(JSON.stringify(result));
} finally {
  if (context) await context.close();
  rmSync(profile, { recursive: true, force: true });
}
