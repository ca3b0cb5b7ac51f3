// hanzo-run view: the only script. Rows marked data-live-run="ID" (a running run) ask
// /api/runs for their figures every two seconds and copy the text into their data-field
// cells; the server formats everything, so this file knows no numbers.
(function () {
  "use strict";
  const EVERY_MS = 2000;

  async function refresh() {
    const rows = Array.from(document.querySelectorAll("[data-live-run]"));
    if (!rows.length) return;
    const query = rows.map((row) => "id=" + encodeURIComponent(row.dataset.liveRun)).join("&");
    try {
      const answer = await fetch("/api/runs?" + query, { credentials: "same-origin" });
      if (answer.ok) {
        for (const run of (await answer.json()).runs) {
          for (const row of document.querySelectorAll('[data-live-run="' + run.id + '"]')) {
            for (const cell of row.querySelectorAll("[data-field]")) {
              const value = run.shown[cell.dataset.field];
              if (value === undefined) continue;
              cell.textContent = value;
              if (cell.classList.contains("status")) cell.className = "status status-" + value;
            }
            if (!run.live) row.removeAttribute("data-live-run");
          }
        }
      }
    } catch (e) {
      // The server stopped (Ctrl-C): the page keeps its last figures.
      return;
    }
    setTimeout(refresh, EVERY_MS);
  }

  setTimeout(refresh, EVERY_MS);
})();
