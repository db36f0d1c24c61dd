// A reader's steps in headless Chromium (Debian's /usr/bin/chromium, driven
// by playwright-core), one per call, each printing one JSON line:
//
//   node flow.mjs subscribe URL EMAIL NAME
//       open URL (the archive), fill the subscribe form by its labels, press
//       the Subscribe button, and report the page it leads to
//   node flow.mjs open URL
//       open URL (e.g. the confirmation link from the email) and report it
//   node flow.mjs press URL
//       open URL (a page with one button: the confirm or unsubscribe page),
//       press the button, report the result
//
// The report: {"status", "url", "title", "text", "feeds", "lang", "scripts"}
// where feeds are the autodiscovery links' types, lang the <html lang>, and
// scripts the number of <script> elements.
//
// env: GZ_CHROMIUM  the browser binary (default /usr/bin/chromium)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { NAV_TIMEOUT, launchOptions } from "./lib.mjs";

const [step, url, ...rest] = process.argv.slice(2);
if (!step || !url) {
  console.error("usage: node flow.mjs subscribe|open|press URL [EMAIL NAME]");
  process.exit(2);
}

async function report(page, response) {
  return {
    status: response ? response.status() : null,
    url: page.url(),
    title: await page.title(),
    text: await page.innerText("body"),
    feeds: await page.$$eval('link[rel="alternate"]', (ls) => ls.map((l) => l.type)),
    lang: await page.evaluate(() => document.documentElement.lang),
    scripts: await page.$$eval("script", (s) => s.length),
  };
}

// Press a submit button and wait for the page the form leads to.
async function submit(page, button) {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: "load", timeout: NAV_TIMEOUT }),
    button.click(),
  ]);
  return response;
}

const profile = mkdtempSync(join(tmpdir(), "gazette-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(
    profile,
    launchOptions({
      // A phone-sized window: the pages must work there.
      viewport: { width: 390, height: 844 },
      // JavaScript off: the pages must work without it (Playwright drives
      // the browser from outside, so this does not stop the test itself).
      javaScriptEnabled: false,
    }),
  );
  const page = context.pages()[0] ?? (await context.newPage());
  let response = await page.goto(url, { waitUntil: "load", timeout: NAV_TIMEOUT });
  if (step === "subscribe") {
    const [email, name] = rest;
    await page.getByRole("textbox", { name: /email/i }).fill(email);
    await page.getByRole("textbox", { name: /name/i }).fill(name ?? "");
    response = await submit(page, page.getByRole("button", { name: /subscribe/i }));
  } else if (step === "press") {
    response = await submit(page, page.getByRole("button"));
  } else if (step !== "open") {
    throw new Error(`unknown step ${step}`);
  }
  console.log(JSON.stringify(await report(page, response)));
} finally {
  if (context) await context.close();
  rmSync(profile, { recursive: true, force: true });
}
