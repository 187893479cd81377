// Phoebe's dashboard script: keyboard shortcuts and bulk selection. Every page works without
// it; this only adds speed.
"use strict";

(() => {
  const rows = () => Array.from(document.querySelectorAll(".issue-row"));
  let focused = -1;
  let pendingG = false;

  function focusRow(i) {
    const all = rows();
    if (all.length === 0) return;
    focused = Math.max(0, Math.min(all.length - 1, i));
    all.forEach((r, j) => r.classList.toggle("focused", j === focused));
    all[focused].scrollIntoView({ block: "nearest" });
  }

  function click(selector) {
    const el = document.querySelector(selector);
    if (el) el.click();
    return !!el;
  }

  // Bulk actions act on the checked issues, or on the focused one when none is checked.
  function bulk(key) {
    const checked = document.querySelectorAll('.issue-row input[name="id"]:checked');
    if (checked.length === 0 && focused >= 0) {
      rows()[focused].querySelector('input[name="id"]').checked = true;
    }
    return click(`[data-bulk="${key}"]`);
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    const typing = t instanceof HTMLElement &&
      (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)) &&
      !(t instanceof HTMLInputElement && t.type === "checkbox");
    const help = document.getElementById("help");
    if (e.key === "Escape") {
      if (help) help.hidden = true;
      if (typing) t.blur();
      return;
    }
    if (typing) return;
    const onList = rows().length > 0;
    let handled = true;
    if (pendingG) {
      pendingG = false;
      if (e.key === "i") window.location.href = "/issues/";
      return;
    }
    switch (e.key) {
      case "/": { const s = document.getElementById("search"); if (s) { s.focus(); s.select(); } else window.location.href = "/issues/"; break; }
      case "?": if (help) help.hidden = !help.hidden; break;
      case "g": pendingG = true; break;
      case "j": if (onList) focusRow(focused + 1); else handled = click('[data-key="j"]'); break;
      case "k": if (onList) focusRow(focused - 1); else handled = click('[data-key="k"]'); break;
      case "Enter": case "o":
        if (onList && focused >= 0) window.location.href = rows()[focused].dataset.href;
        else handled = false;
        break;
      case "x":
        if (onList && focused >= 0) { const c = rows()[focused].querySelector('input[name="id"]'); c.checked = !c.checked; }
        break;
      case "r": case "i": case "u": handled = onList ? bulk(e.key) : click(`[data-key="${e.key}"]`); break;
      case "f": handled = click('[data-key="f"]'); break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  });

  document.addEventListener("click", (e) => {
    const t = e.target;
    if (!(t instanceof HTMLElement)) return;
    if (t.closest("[data-help]")) {
      const help = document.getElementById("help");
      if (help) help.hidden = !help.hidden;
      return;
    }
    // A click anywhere on a row opens the issue, except on its checkbox or a link.
    const row = t.closest(".issue-row");
    if (row && !t.closest("a, input, label, button")) window.location.href = row.dataset.href;
  });

  // Live updates: when digest stored new events, fetch this page again and swap in the parts
  // that show counts (checked rows and the keyboard focus survive the swap).
  const live = document.body.dataset.live;
  if (live && window.EventSource) {
    let busy = false;
    const refresh = async () => {
      if (busy) return;
      busy = true;
      try {
        const response = await fetch(window.location.href, { headers: { "X-Phoebe-Live": "1" } });
        if (!response.ok) return;
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
        const checked = new Set(Array.from(document.querySelectorAll('input[name="id"]:checked')).map((c) => c.value));
        for (const id of ["live-list", "live-side", "live-badges"]) {
          const now = document.getElementById(id);
          const next = fresh.getElementById(id);
          if (now && next) now.replaceWith(next);
        }
        document.querySelectorAll('input[name="id"]').forEach((c) => { c.checked = checked.has(c.value); });
        if (focused >= 0) focusRow(focused);
        document.body.dataset.updated = String(Date.now());
      } finally {
        busy = false;
      }
    };
    const source = new EventSource("/live");
    source.addEventListener("update", refresh);
    window.addEventListener("pagehide", () => source.close());
  }

  // Copy buttons put their text on the clipboard; where the browser refuses (plain http on
  // another host), the text is selected for Ctrl+C instead.
  document.addEventListener("click", async (e) => {
    const button = e.target instanceof HTMLElement && e.target.closest("[data-copy]");
    if (!button) return;
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
      button.textContent = "Copied";
    } catch {
      const input = button.parentElement && button.parentElement.querySelector("input");
      if (input) { input.focus(); input.select(); }
      button.textContent = "Press Ctrl+C";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });

  // Destructive buttons ask first.
  document.addEventListener("submit", (e) => {
    const button = e.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) e.preventDefault();
  });

  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll('.issue-row input[name="id"]').forEach((c) => { c.checked = all.checked; });
    });
  }
})();
