// An admin's whole journey through the console in headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core), printing one
// JSON object of findings for tests/admin_browser.rs to judge:
//
//   node admin.mjs URL EMAIL PASSWORD OUTDIR MODE PLAN.json
//
// URL is the server (`http://127.0.0.1:PORT`), EMAIL/PASSWORD the admin's
// account, MODE `js` or `nojs` (a context with JavaScript off: everything
// must work without it), OUTDIR where screenshots go (OUTDIR/PAGE-phone.png
// and OUTDIR/PAGE-desktop.png), and PLAN.json what to
// look for on the way (written by the Rust test, see `Plan` there):
//
//   {"search": TEXT, "open": NAME, "import": {"file": PATH, "wait": [REGEX...]},
//    "erase": {"search": TEXT, "open": NAME, "email": ADDRESS},
//    "issue": {"title": TITLE}, "test_to": ADDRESS}
//
// The journey: the sign-in page (a console URL without a session), sign in
// by the form's labels, the dashboard, search subscribers, open one, import
// a CSV through the form and wait for its result, find another subscriber
// and erase them through the confirmation step, the issues list, an issue,
// its HTML and text previews, a test copy, the audit log, sign out, and a
// console URL again (the sign-in page, nothing else).
//
// On every page: status, URL, title, the <h1>s and the text of <main>;
// full-page screenshots at 390x844 and 1280x900; whether the page scrolls
// sideways at 390 and 360 px; axe-core's serious and critical violations;
// console errors (CSP refusals included) and failed sub-requests.
//
// How axe runs: on a snapshot of the page's DOM, in a second context with
// JavaScript on. The console's CSP (`script-src 'self'`) refuses an inline
// <script>, so Playwright's addScriptTag cannot inject axe.min.js; its text
// is evaluated through the DevTools protocol instead, which CSP does not
// govern. And a page with JavaScript off cannot run axe at all (Chromium
// closes such a page when a timer fires in it), so axe gets a copy: the
// same URL answered with the DOM as the admin's page has it, the page's own
// CSP header, the real stylesheet from the server, and scripts refused (the
// snapshot already holds whatever admin.js did).
//
// With `"stop_after": NAME` in the plan, the journey ends after that page
// (tests/admin_browser.rs uses it to show that the checks catch a broken
// page).
//
// A step that fails (no such field, no navigation, a timeout) ends the
// journey: the findings so far are printed with `failed` set, and a
// screenshot of where it stopped (`failed-phone.png`), so the Rust side
// shows what went wrong instead of a stack trace. Exit 0 whenever JSON was
// printed; 2 for bad arguments.
//
// env: GZ_CHROMIUM  the browser binary (default /usr/bin/chromium)
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { NAV_TIMEOUT, launchOptions } from "./lib.mjs";

const [server, email, password, outDir, mode, planPath] = process.argv.slice(2);
if (!server || !email || !password || !outDir || !["js", "nojs"].includes(mode) || !planPath) {
  console.error("usage: node admin.mjs URL EMAIL PASSWORD OUTDIR js|nojs PLAN.json");
  process.exit(2);
}
const plan = JSON.parse(readFileSync(planPath, "utf8"));
const here = dirname(fileURLToPath(import.meta.url));
const axeSource = readFileSync(join(here, "node_modules/axe-core/axe.min.js"), "utf8");
mkdirSync(outDir, { recursive: true });

const PHONE = { width: 390, height: 844 };
const NARROW = { width: 360, height: 740 };
const DESKTOP = { width: 1280, height: 900 };
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"];

const findings = { mode, steps: [], failed: null };
// Console errors and failed requests since the last recorded page.
let noise = [];

/** The last main-frame document response (clicks, redirects, meta refresh). */
let lastDocument = null;

/** The first of `locators` that matches something, or null. */
async function first(...locators) {
  for (const l of locators) {
    if ((await l.count()) > 0) return l.first();
  }
  return null;
}

/** `first`, or a failure naming what was looked for. */
async function need(what, ...locators) {
  const l = await first(...locators);
  if (!l) throw new Error(`found no ${what.replace(/^an? /, "")} on ${pageRef.url()}`);
  return l;
}

/** Click and wait for the page it leads to. */
async function follow(locator) {
  const nav = pageRef.waitForNavigation({ waitUntil: "load", timeout: NAV_TIMEOUT });
  await locator.click();
  await nav;
}

/** Open a URL like typing it in the address bar. */
async function open(url) {
  await pageRef.goto(new URL(url, pageRef.url() === "about:blank" ? server : pageRef.url()).href, {
    waitUntil: "load",
    timeout: NAV_TIMEOUT,
  });
}

/** The text of <body>, or "" while the page is between documents. */
async function bodyText() {
  try {
    return await pageRef.innerText("body", { timeout: 2_000 });
  } catch {
    return "";
  }
}

/**
 * Wait until every regex of `wait` matches the page's text (case
 * insensitive, `^` at any line). Without JavaScript the page cannot update itself: when it
 * has not moved on for 3 s, press its refresh link or button if it has
 * one, else reload it. With JavaScript, admin.js updates the page.
 */
async function settle(wait, timeout = 60_000) {
  const res = wait.map((w) => new RegExp(w, "im"));
  const start = Date.now();
  let quiet = Date.now();
  let lastUrl = pageRef.url();
  for (;;) {
    const text = await bodyText();
    if (res.every((r) => r.test(text))) return;
    if (Date.now() - start > timeout) {
      throw new Error(`waited ${timeout / 1000} s for ${wait.join(", ")} on ${pageRef.url()}`);
    }
    if (pageRef.url() !== lastUrl) {
      lastUrl = pageRef.url();
      quiet = Date.now();
    }
    if (mode === "nojs" && Date.now() - quiet > 3_000) {
      const again = await first(
        pageRef.getByRole("link", { name: /refresh|reload|check again|update/i }),
        pageRef.getByRole("button", { name: /refresh|reload|check again|update/i }),
      );
      if (again) await follow(again);
      else await pageRef.reload({ waitUntil: "load", timeout: NAV_TIMEOUT });
      quiet = Date.now();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** axe-core on a copy of the current page (see the top of this file). */
async function audit(auditor, context) {
  const url = pageRef.url();
  const html = await pageRef.content();
  const csp = (lastDocument?.headers()["content-security-policy"] ?? "")
    .split(";")
    .map((d) => d.trim())
    // A sandboxed page (the digest preview) would run no script, axe's
    // neither; the sandbox is not what is audited.
    .filter((d) => d && !d.startsWith("sandbox"))
    .join("; ");
  await auditor.context().clearCookies();
  await auditor.context().addCookies(await context.cookies());
  await auditor.unrouteAll({ behavior: "wait" });
  await auditor.route("**/*", (route) => {
    const req = route.request();
    if (req.isNavigationRequest() && req.frame() === auditor.mainFrame()) {
      const headers = { "content-type": "text/html; charset=utf-8" };
      if (csp) headers["content-security-policy"] = csp;
      return route.fulfill({ status: 200, headers, body: html });
    }
    if (req.resourceType() === "script") return route.abort();
    return route.continue();
  });
  await auditor.goto(url, { waitUntil: "load", timeout: NAV_TIMEOUT });
  await auditor.evaluate(axeSource);
  const result = await auditor.evaluate(
    (tags) =>
      window.axe.run(document, {
        runOnly: { type: "tag", values: tags },
        // Frames (the preview on an issue's page) are audited as pages of
        // their own; axe would wait a minute for each frame to answer.
        iframes: false,
      }),
    AXE_TAGS,
  );
  const violations = result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => ({
        target: n.target.join(" "),
        html: n.html.slice(0, 300),
        summary: n.failureSummary,
      })),
    }));
  // How many rules passed: proof that axe looked at the page at all.
  return { violations, passes: result.passes.length };
}

/** Whether the page scrolls sideways at `size`. */
async function overflow(size) {
  await pageRef.setViewportSize(size);
  const [scrollWidth, innerWidth] = await pageRef.evaluate(() => [
    document.documentElement.scrollWidth,
    window.innerWidth,
  ]);
  return { width: size.width, scrollWidth, innerWidth, sideways: scrollWidth > innerWidth };
}

/** Record the page the browser shows now as step `name`. */
async function record(name, auditor, context) {
  const response = lastDocument;
  const type = response?.headers()["content-type"] ?? "";
  const html = type.startsWith("text/html");
  const step = {
    name,
    url: pageRef.url(),
    status: response ? response.status() : null,
    content_type: type,
    title: await pageRef.title(),
    h1: html ? await pageRef.$$eval("h1", (hs) => hs.map((h) => h.innerText.trim())) : [],
    text: html && (await pageRef.$("main")) ? await pageRef.innerText("main") : await bodyText(),
    shots: {},
    overflow: [],
    axe: null,
    noise: [],
  };
  // Phone first (the journey runs at phone size), then the narrowest
  // phone the console promises, then desktop, and back.
  await pageRef.setViewportSize(PHONE);
  step.shots.phone = join(outDir, `${name}-phone.png`);
  await pageRef.screenshot({ path: step.shots.phone, fullPage: true });
  step.overflow.push(await overflow(PHONE));
  step.overflow.push(await overflow(NARROW));
  await pageRef.setViewportSize(DESKTOP);
  step.shots.desktop = join(outDir, `${name}-desktop.png`);
  await pageRef.screenshot({ path: step.shots.desktop, fullPage: true });
  await pageRef.setViewportSize(PHONE);
  if (html) {
    const { violations, passes } = await audit(auditor, context);
    step.axe = violations;
    step.axe_passes = passes;
  }
  step.noise = noise;
  noise = [];
  findings.steps.push(step);
  if (plan.stop_after === name) throw STOP;
  return step;
}

/** Thrown by `record` after the plan's `stop_after` page: the end, not a failure. */
const STOP = Symbol("stop");

let pageRef;
let browser;
try {
  browser = await chromium.launch(launchOptions());
  const context = await browser.newContext({ viewport: PHONE, javaScriptEnabled: mode === "js" });
  const page = await context.newPage();
  pageRef = page;
  const auditor = await (await browser.newContext({ viewport: PHONE })).newPage();

  page.on("response", (r) => {
    const req = r.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) lastDocument = r;
    else if (r.status() >= 400 && !new URL(r.url()).pathname.endsWith("/favicon.ico")) {
      noise.push(`${r.status()} ${req.method()} ${r.url()}`);
    }
  });
  page.on("requestfailed", (req) => {
    const why = req.failure()?.errorText ?? "";
    // A navigation that replaced a page still loading is not a failure.
    if (why !== "net::ERR_ABORTED") noise.push(`failed ${req.method()} ${req.url()}: ${why}`);
  });
  page.on("console", (m) => {
    // Failed loads are reported by the response listener, with their URL.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      noise.push(`console: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => noise.push(`script error: ${e.message}`));

  let step = "login";
  try {
    // A console URL without a session: the sign-in page.
    await open(`${server}/admin/`);
    await record("login", auditor, context);

    step = "sign in";
    await page.getByLabel(/email/i).fill(email);
    await page.getByLabel(/password/i).fill(password);
    await follow(page.getByRole("button", { name: /sign in/i }));
    await record("dashboard", auditor, context);

    step = "subscribers";
    const nav = page.getByRole("navigation", { name: /console/i });
    await follow(nav.getByRole("link", { name: /subscribers/i }));
    await record("subscribers", auditor, context);

    step = "search";
    await search(plan.search);
    await record("subscribers-search", auditor, context);

    step = "open a subscriber";
    await follow(
      await need(`a link named ${plan.open}`, page.locator("main").getByRole("link", { name: plan.open })),
    );
    await record("subscriber", auditor, context);

    step = "import form";
    // From the list, where the import is offered.
    await follow(nav.getByRole("link", { name: /subscribers/i }));
    await follow(
      await need(
        "a link to the import",
        page.locator(`main a[href$="subscribers/import"]`),
        page.locator("main").getByRole("link", { name: /import/i }),
      ),
    );
    await record("import", auditor, context);

    step = "import";
    const file = await need(
      "a file field",
      page.getByLabel(/csv|file/i).and(page.locator('input[type="file"]')),
      page.locator('input[type="file"][name="file"]'),
    );
    await file.setInputFiles(plan.import.file);
    const importButton = await need(
      "an import button",
      page.locator("main form").getByRole("button", { name: /import|upload/i }),
    );
    if (mode === "js") {
      // admin.js may take the form over (no navigation) or let it go to
      // the job page and poll there: either way the page ends up naming
      // the bad rows.
      const nav = page.waitForNavigation({ waitUntil: "load", timeout: 5_000 }).catch(() => null);
      await importButton.click();
      await nav;
    } else {
      await follow(importButton);
    }
    await settle(plan.import.wait);
    await record("import-result", auditor, context);

    step = "find the subscriber to erase";
    await follow(nav.getByRole("link", { name: /subscribers/i }));
    await search(plan.erase.search);
    await follow(
      await need(
        `a link named ${plan.erase.open}`,
        page.locator("main").getByRole("link", { name: plan.erase.open }),
      ),
    );
    await record("erase-subscriber", auditor, context);

    step = "erase: the confirmation step";
    await follow(
      await need(
        "an erase link or button",
        page.locator("main").getByRole("link", { name: /erase/i }),
        page.locator("main").getByRole("button", { name: /erase/i }),
      ),
    );
    await record("subscriber-erase", auditor, context);

    step = "erase";
    // A confirmation that asks for the address typed again gets it.
    const retype = await first(page.locator("main form").getByRole("textbox"));
    if (retype) await retype.fill(plan.erase.email);
    await follow(await need("an erase button", page.locator("main form").getByRole("button", { name: /erase/i })));
    await record("erased", auditor, context);

    step = "issues";
    await follow(nav.getByRole("link", { name: /issues/i }));
    await record("issues", auditor, context);

    step = "an issue";
    await follow(
      await need(`a link named ${plan.issue.title}`, page.locator("main").getByRole("link", { name: plan.issue.title })),
    );
    const issueUrl = page.url();
    await record("issue", auditor, context);

    // The previews may open in a new tab or sit in a frame: the admin's
    // browser goes where the link points.
    for (const [kind, name] of [
      ["html", "preview-html"],
      ["txt", "preview-text"],
    ]) {
      step = `preview ${kind}`;
      const link = await need(`a link to preview.${kind}`, page.locator(`main a[href$="preview.${kind}"]`));
      await open(await link.getAttribute("href"));
      await record(name, auditor, context);
      await open(issueUrl);
    }

    step = "test copy";
    const testForm = page.locator('main form[action$="/test"]');
    await (await need("the test copy's address field", testForm.getByRole("textbox"))).fill(plan.test_to);
    const send = await need("the test copy's button", testForm.getByRole("button"));
    if (mode === "js") {
      const nav = page.waitForNavigation({ waitUntil: "load", timeout: 5_000 }).catch(() => null);
      await send.click();
      await nav;
    } else {
      await follow(send);
    }
    // The page says it went; the test then finds it at the SMTP server.
    await settle(["test copy was sent"]);
    await record("test-copy", auditor, context);

    step = "audit log";
    await follow(nav.getByRole("link", { name: /audit/i }));
    await record("audit", auditor, context);

    step = "sign out";
    await follow(page.getByRole("button", { name: /sign out/i }));
    await record("signed-out", auditor, context);

    step = "a console page after signing out";
    await open(`${server}/admin/subscribers`);
    await record("after-sign-out", auditor, context);
  } catch (e) {
    if (e !== STOP) {
      findings.failed = { step, error: String(e?.message ?? e), url: page.url(), text: await bodyText() };
      try {
        await page.screenshot({ path: join(outDir, "failed-phone.png"), fullPage: true });
      } catch {
        // The page may be gone; the error says why.
      }
    }
  }
  console.log(JSON.stringify(findings));
} finally {
  if (browser) await browser.close();
}

/** Search the subscriber list for `text` through its form. */
async function search(text) {
  const main = pageRef.locator("main");
  const box = await need(
    "a search field",
    main.getByRole("searchbox"),
    main.getByRole("textbox", { name: /search|find|address|name/i }),
  );
  await box.fill(text);
  const button = await first(main.getByRole("button", { name: /search|find/i }));
  if (button) await follow(button);
  else {
    const nav = pageRef.waitForNavigation({ waitUntil: "load", timeout: NAV_TIMEOUT });
    await box.press("Enter");
    await nav;
  }
}
