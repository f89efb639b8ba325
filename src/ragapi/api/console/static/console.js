// The console's script: calls to the JSON API with the browser session (its cookie, and the page's CSRF
// token on every state-changing request), forms sent as JSON, and the pages that stream (ask, upload).
// No build step and no dependency beyond htmx; served with a CSP that allows no inline script.
"use strict";

const Console = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  let refreshing = null;
  async function refreshSession() {
    // One refresh for all the calls that met an expired access token at the same time.
    refreshing ??= fetch("/console/session/refresh", {
      method: "POST", headers: {"X-CSRF-Token": csrf()}, credentials: "same-origin", redirect: "manual",
    }).then((r) => r.status === 204).finally(() => { refreshing = null; });
    return refreshing;
  }

  // fetch() against our own API; a 401 (the access token expired) refreshes the session once and retries.
  async function api(method, url, body, extra = {}) {
    const headers = {"X-CSRF-Token": csrf(), ...(extra.headers || {})};
    let payload = body;
    if (body !== undefined && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const send = () => fetch(url, {method, headers, body: payload, credentials: "same-origin", signal: extra.signal});
    let response = await send();
    if (response.status === 401) {
      if (await refreshSession()) {
        response = await send();
      } else {
        location.assign("/console/login?next=" + encodeURIComponent(location.pathname + location.search));
      }
    }
    return response;
  }

  // A problem+json body (RFC 9457) as one sentence for the page.
  async function problemText(response) {
    try {
      const p = await response.json();
      return p.detail ? `${p.title}: ${p.detail}` : `${response.status} ${response.statusText}`;
    } catch {
      return `${response.status} ${response.statusText}`;
    }
  }

  // <form data-api="POST" data-url="/v1/..."> fields as a JSON object: empty optional fields left out,
  // data-type="int" as numbers, several checkboxes of one name as a list.
  function formJson(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.type === "submit" || el.type === "button") continue;
      if (el.type === "checkbox") {
        if (el.dataset.list !== undefined) {
          out[el.name] ??= [];
          if (el.checked) out[el.name].push(el.value);
        } else {
          out[el.name] = el.checked;
        }
        continue;
      }
      if (el.tagName === "SELECT" && el.multiple) {
        const picked = [...el.selectedOptions].map((o) => o.value);
        if (picked.length || el.dataset.optional === undefined) out[el.name] = picked;
        continue;
      }
      if (el.value === "" && el.dataset.optional !== undefined) continue;
      out[el.name] = el.dataset.type === "int" ? Number(el.value) : el.value;
    }
    return out;
  }

  function announce(where, text, isError) {
    if (!where) return;
    where.textContent = text;
    where.classList.toggle("error", Boolean(isError));
  }

  async function submitApiForm(form, submitter) {
    const errors = form.querySelector("[data-errors]");
    announce(errors, "");
    const method = form.dataset.api;
    const url = form.dataset.url;
    if (submitter) submitter.disabled = true;
    try {
      const response = await api(method, url, method === "DELETE" ? undefined : formJson(form));
      if (!response.ok) {
        announce(errors, await problemText(response), true);
        return;
      }
      const data = response.status === 204 ? null : await response.json();
      form.dispatchEvent(new CustomEvent("api:done", {detail: data, bubbles: true}));
      if (form.dataset.then === "reload") location.reload();
    } catch (err) {
      announce(errors, `The request failed: ${err.message}`, true);
    } finally {
      if (submitter) submitter.disabled = false;
    }
  }

  async function clickApiButton(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    const response = await api(button.dataset.api, button.dataset.url, body);
    button.disabled = false;
    if (!response.ok) {
      const status = document.getElementById("status") || button.parentElement;
      announce(status, await problemText(response), true);
      return;
    }
    const data = response.status === 204 ? null : await response.json();
    button.dispatchEvent(new CustomEvent("api:done", {detail: data, bubbles: true}));
    if (button.dataset.then === "reload") location.reload();
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset.api === undefined || form.dataset.custom !== undefined) return;
    event.preventDefault();
    submitApiForm(form, event.submitter);
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-api]");
    if (!button || button.form?.dataset.api !== undefined) return;
    event.preventDefault();
    clickApiButton(button);
  });

  // Server-sent events from a fetch() response (POST streams cannot use EventSource): yields {event, data}.
  async function* sse(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (data.length) yield {event: name, data: JSON.parse(data.join("\n"))};
      }
    }
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (v !== undefined && v !== null) node.setAttribute(k, v);
    }
    node.append(...children);
    return node;
  }

  return {api, problemText, sse, el, announce, formJson};
})();
