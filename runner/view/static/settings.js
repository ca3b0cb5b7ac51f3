// The Providers and Models pages: show/hide a key while typing it, filter a long model list.
// A static file, since the pages' Content-Security-Policy allows no inline script.
"use strict";
document.querySelectorAll("button.show-key").forEach((button) => {
  button.addEventListener("click", () => {
    const input = document.getElementById(button.dataset.for);
    const hidden = input.type === "password";
    input.type = hidden ? "text" : "password";
    button.textContent = hidden ? "Hide" : "Show";
    button.setAttribute("aria-pressed", String(hidden));
  });
});
const filter = document.getElementById("model-filter");
if (filter) {
  filter.addEventListener("input", () => {
    const needle = filter.value.trim().toLowerCase();
    document.querySelectorAll("tr.model-row").forEach((row) => {
      row.hidden = needle !== "" && !row.dataset.model.toLowerCase().includes(needle);
    });
  });
}
