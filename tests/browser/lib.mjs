// What the browser scripts (flow.mjs, admin.mjs) share: how Chromium is
// started here. Debian's /usr/bin/chromium (or GZ_CHROMIUM), headless,
// without the sandbox (containers and CI runners have no user namespaces)
// and without the background traffic a test machine has no network for.

/** How long a page may take to load or a navigation to end. */
export const NAV_TIMEOUT = 30_000;

/** Options for `chromium.launch` / `launchPersistentContext`, plus `extra`. */
export function launchOptions(extra = {}) {
  return {
    executablePath: process.env.GZ_CHROMIUM || "/usr/bin/chromium",
    headless: true,
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
    // Starting the browser on a busy 2-core runner can be slow.
    timeout: 60_000,
    ...extra,
  };
}
