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
