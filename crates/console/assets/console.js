// Ambient console: small conveniences on top of pages that work without script.
// - Tables with a filter box: rows hide as you type (the box is hidden without script).
// - Copy buttons next to ids.
// - Forms with data-confirm ask before they are sent.
// - Selects with data-autosubmit send their form when changed.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll("[data-filter-for]")) {
    const table = document.getElementById(box.dataset.filterFor);
    const input = box.querySelector("input");
    if (!table || !input) continue;
    box.hidden = false;
    input.addEventListener("input", () => {
      const needle = input.value.trim().toLowerCase();
      for (const row of table.tBodies[0] ? table.tBodies[0].rows : []) {
        row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
      }
    });
  }

  if (navigator.clipboard) {
    for (const button of document.querySelectorAll("button[data-copy]")) {
      button.hidden = false;
      button.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(button.dataset.copy);
          button.textContent = "Copied";
          setTimeout(() => { button.textContent = "Copy"; }, 1500);
        } catch (_) {
          button.textContent = "Select and copy";
        }
      });
    }
  }

  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form && select.form.requestSubmit());
  }
});
