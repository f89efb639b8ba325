// The admin pages' script (a knowledge base's settings, users' roles, a tenant's plan, analytics' range):
// forms sent as JSON to the API with nested fields and nulls, and a problem's `errors` shown next to the
// fields they name. Uses the Console helpers of console.js (loaded first); no inline script, no build.
"use strict";

(() => {
  const {api, problemText, announce, release} = Console;
  const ROOTS = new Set(["body", "query", "path"]);

  // One field's value as JSON: data-type int, float or bool; data-null sends null when it is empty (the
  // API's "back to the service's setting"), data-optional leaves it out.
  function value(el) {
    if (el.type === "checkbox") return el.checked;
    if (el.value === "") {
      if (el.dataset.null !== undefined) return null;
      if (el.dataset.optional !== undefined) return undefined;
    }
    switch (el.dataset.type) {
      case "int":
      case "float": return Number(el.value);
      case "bool": return el.value === "true";
      default: return el.value;
    }
  }

  // The form's fields as an object; a dotted name (settings.top_k) is a nested field.
  function body(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.type === "submit" || el.type === "button") continue;
      const v = value(el);
      if (v === undefined) continue;
      const path = el.name.split(".");
      let at = out;
      for (const key of path.slice(0, -1)) at = (at[key] ??= {});
      at[path[path.length - 1]] = v;
    }
    return out;
  }

  function clearErrors(form) {
    for (const p of form.querySelectorAll(".field-error")) p.remove();
    for (const el of form.querySelectorAll("[aria-invalid]")) {
      el.removeAttribute("aria-invalid");
      const kept = (el.getAttribute("aria-describedby") || "").split(" ").filter((id) => id && !id.endsWith("-error"));
      if (kept.length) el.setAttribute("aria-describedby", kept.join(" "));
      else el.removeAttribute("aria-describedby");
    }
  }

  // Each error of a problem next to the field its `loc` names, the first of them focused; what names no
  // field of the form goes to the form's alert.
  function showProblem(form, problem, summary) {
    const alert = form.querySelector("[data-errors]");
    let first = null;
    for (const e of problem?.errors || []) {
      const loc = (e.loc || []).map(String);
      if (loc.length && ROOTS.has(loc[0])) loc.shift();
      const field = loc.length ? form.querySelector(`[name="${CSS.escape(loc.join("."))}"]`) : null;
      if (!field) continue;
      const id = `${field.id || field.name}-error`;
      const note = Console.el("p", {class: "error field-error", id, text: `${problem.title}: ${e.msg}`});
      field.insertAdjacentElement("afterend", note);
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", `${field.getAttribute("aria-describedby") || ""} ${id}`.trim());
      first ??= field;
    }
    announce(alert, first ? `${summary} (marked at its field above)` : summary, true);
    first?.focus();
  }

  async function submit(form, submitter) {
    clearErrors(form);
    announce(form.querySelector("[data-errors]"), "");
    if (submitter) submitter.disabled = true;
    try {
      const response = await api(form.dataset.method, form.dataset.url, body(form));
      if (!response.ok) {
        const summary = await problemText(response.clone());
        let problem = null;
        try { problem = await response.json(); } catch { /* not a problem body */ }
        showProblem(form, problem, summary);
        return;
      }
      const then = form.dataset.then;
      if (then === "reload") location.reload();
      else if (then) location.assign(then);
    } catch (err) {
      announce(form.querySelector("[data-errors]"), `The request failed: ${err.message}`, true);
    } finally {
      release(submitter);
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset.adminForm === undefined) return;
    event.preventDefault();
    submit(form, event.submitter);
  });

  // A button of console.js's kind (data-api) that leads to another page once done (a deleted knowledge base).
  document.addEventListener("api:done", (event) => {
    const go = event.target.dataset?.go;
    if (go) location.assign(go);
  });
})();
