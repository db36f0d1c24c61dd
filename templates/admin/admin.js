// The console works without this file. It only makes things live where a
// wait would otherwise be blind (import and send progress).
"use strict";

// Import progress (subscribers/import/JOB): poll the job's JSON, move the
// bar, and reload the page once the job is over to show its rows. Without
// JavaScript the page reloads itself every 2 s (a <noscript> refresh).
(function () {
  var job = document.getElementById("import-job");
  if (!job || !window.fetch) { return; }
  var state = job.getAttribute("data-state");
  if (state !== "reading" && state !== "saving") { return; }
  var url = job.getAttribute("data-poll");
  var bar = document.getElementById("import-progress");
  var said = document.getElementById("import-status");
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        // Anything but the job's JSON (the session ended and this is the
        // sign-in page, or an error): the page itself says what happened.
        var type = r.headers.get("Content-Type") || "";
        if (!r.ok || r.redirected || type.indexOf("application/json") !== 0) { return null; }
        return r.json();
      })
      .then(function (j) {
        if (!j) { window.location.reload(); return; }
        if (j.state === "done" || j.state === "failed") { window.location.reload(); return; }
        if (j.state === "reading") {
          said.textContent = "Reading and checking " + j.lines + " lines…";
          bar.removeAttribute("value");
        } else {
          said.textContent = "Saving: " + j.saved + " of " + j.rows + " rows…";
          bar.value = j.percent;
          bar.textContent = j.percent + " %";
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
