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

  // A button disabled while its request runs loses the keyboard's focus; give it back when it is enabled
  // again, unless the page has put the focus somewhere on purpose since.
  function release(button) {
    if (!button) return;
    button.disabled = false;
    if (!document.activeElement || document.activeElement === document.body) button.focus();
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
      release(submitter);
    }
  }

  async function clickApiButton(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    const response = await api(button.dataset.api, button.dataset.url, body);
    release(button);
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

  return {api, problemText, sse, el, announce, formJson, release};
})();

// --- ask: a conversation, answers streamed from POST /v1/conversations/{id}/messages ---
(() => {
  const {api, problemText, sse, el, release} = Console;
  const form = document.getElementById("ask-form");
  const messages = document.getElementById("messages");

  function citationList(citations) {
    const list = el("ul", {class: "citations", "aria-label": "Sources"});
    for (const c of citations) {
      const label = `[${c.n}] ${c.title}${c.page ? `, p. ${c.page}` : ""}`;
      list.append(el("li", {}, el("button", {type: "button", "data-passage": c.chunk_id, text: label})));
    }
    return list;
  }

  function ratingButtons(queryId) {
    const group = el("div", {class: "rating", role: "group", "aria-label": "Rate this answer"});
    group.append(
      el("button", {type: "button", "data-rate": "1", "data-query": queryId, "aria-pressed": "false", text: "Good answer"}),
      el("button", {type: "button", "data-rate": "-1", "data-query": queryId, "aria-pressed": "false", text: "Bad answer"}),
      el("span", {class: "muted", role: "status"}),
    );
    return group;
  }

  async function ask(event) {
    event.preventDefault();
    const errors = form.querySelector("[data-errors]");
    const submit = form.querySelector('button[type="submit"]');
    const question = form.elements.content.value.trim();
    if (!question) return;
    errors.textContent = "";
    submit.disabled = true;
    try {
      let id = form.dataset.conversation;
      if (!id) {
        const kbs = form.elements.knowledge_bases ? [...form.elements.knowledge_bases.selectedOptions].map((o) => o.value) : [];
        const made = await api("POST", "/v1/conversations", {title: question.slice(0, 200), knowledge_bases: kbs});
        if (!made.ok) { errors.textContent = await problemText(made); return; }
        id = (await made.json()).id;
        form.dataset.conversation = id;
        history.replaceState(null, "", `/console/ask?conversation=${id}`);
      }
      messages.append(el("article", {class: "message user", "aria-label": "Question"}, el("div", {class: "text", text: question})));
      const text = el("div", {class: "text"});
      const answer = el("article", {class: "message assistant", "aria-label": "Answer", "aria-busy": "true"}, text);
      messages.append(answer);
      const response = await api("POST", `/v1/conversations/${id}/messages`, {content: question, stream: true},
        {headers: {Accept: "text/event-stream"}});
      if (!response.ok) {
        answer.remove();
        errors.textContent = await problemText(response);
        return;
      }
      let sources = null;
      for await (const {event: name, data} of sse(response)) {
        if (name === "sources") {
          sources = citationList(data.citations);
        } else if (name === "token") {
          text.textContent += data.text;
        } else if (name === "done") {
          text.textContent = data.answer;
          answer.append(citationList(data.citations));
          if (form.dataset.canRate && data.query_id) answer.append(ratingButtons(data.query_id));
          sources = null;
        } else if (name === "error") {
          errors.textContent = `${data.title}: ${data.detail}`;
        }
      }
      if (sources) answer.append(sources);  // a stream cut before `done`: at least what was cited
      answer.setAttribute("aria-busy", "false");
      form.elements.content.value = "";
      const label = form.querySelector('label[for="question"]');
      if (label) label.textContent = "Follow-up question";
      form.querySelectorAll("#ask-kbs, .kb-hint, label[for=ask-kbs]").forEach((n) => n.remove());  // chosen once
      form.elements.content.focus();
    } catch (err) {
      errors.textContent = `The request failed: ${err.message}`;
    } finally {
      release(submit);
    }
  }

  async function rate(button) {
    const group = button.closest(".rating");
    const status = group.querySelector('[role="status"]');
    const response = await api("POST", "/v1/feedback", {query_id: button.dataset.query, rating: Number(button.dataset.rate)});
    if (!response.ok) { status.textContent = await problemText(response); return; }
    for (const b of group.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === button));
    status.textContent = "Thanks: rating saved.";
  }

  async function openPassage(button) {
    const dialog = document.getElementById("passage");
    const body = document.getElementById("passage-body");
    const response = await api("GET", `/console/passages/${button.dataset.passage}`);
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const found = page.getElementById("passage-content");
    body.replaceChildren(...(found ? found.childNodes : [el("p", {text: `${response.status} ${response.statusText}`})]));
    dialog.showModal();
    body.querySelector(".passage")?.focus();
  }

  document.addEventListener("click", (event) => {
    const rateButton = event.target.closest("button[data-rate]");
    if (rateButton) rate(rateButton);
    const cited = event.target.closest("button[data-passage]");
    if (cited) openPassage(cited);
  });
  if (form) form.addEventListener("submit", ask);
})();

// --- upload: files or a folder sent to POST /v1/ingest, each job followed through its event stream ---
(() => {
  const {api, problemText, el, release} = Console;
  const form = document.getElementById("upload-form");
  if (!form) return;
  const area = document.getElementById("uploads");

  function batches(files, maxFiles, maxBytes) {
    const out = [];
    let current = [], size = 0;
    for (const f of files) {
      if (current.length && (current.length >= maxFiles || size + f.size > maxBytes * 0.95)) {
        out.push(current); current = []; size = 0;
      }
      current.push(f); size += f.size;
    }
    if (current.length) out.push(current);
    return out;
  }

  function fileRows(files) {
    const body = el("tbody");
    const rows = files.map((f) => {
      const status = el("td", {class: "status", text: "uploading"});
      const row = el("tr", {}, el("td", {text: f.webkitRelativePath || f.name}), status, el("td", {class: "detail"}));
      body.append(row);
      return row;
    });
    const table = el("table", {class: "files", "aria-label": "Files"},
      el("thead", {}, el("tr", {}, el("th", {scope: "col", text: "File"}), el("th", {scope: "col", text: "Status"}), el("th", {scope: "col", text: "Detail"}))),
      body);
    return {table, rows};
  }

  async function follow(job, rows, bar, summary) {
    const show = (view) => {
      const p = view.progress;
      bar.max = Math.max(p.files_total, 1);
      bar.value = p.files_done;
      summary.textContent = `${view.status}: ${p.files_done} of ${p.files_total} files done, ${p.files_failed} failed, ${p.chunks_done} chunks`;
    };
    const files = async () => {
      const response = await api("GET", job.links.self);
      if (!response.ok) return;
      for (const d of (await response.json()).documents) {
        const row = rows[d.index];
        if (!row) continue;
        const status = row.querySelector(".status");
        const done = !["queued", "running", "failed", "cancelled"].includes(d.status);  // created, updated...
        status.textContent = done ? `done (${d.status})` : d.status;
        status.className = `status status-${done ? "done" : d.status}`;
        row.querySelector(".detail").textContent = d.error ? `${d.error.title}: ${d.error.detail}` : (d.chunks ? `${d.chunks} chunks` : "");
      }
    };
    await new Promise((resolve) => {
      const events = new EventSource(job.links.events);
      events.addEventListener("progress", (e) => { show(JSON.parse(e.data)); files(); });
      events.addEventListener("done", async (e) => { events.close(); show(JSON.parse(e.data)); await files(); resolve(); });
      events.addEventListener("error", async (e) => {
        if (e.data) summary.textContent = JSON.parse(e.data).detail;
        events.close();
        await files();
        resolve();
      });
    });
  }

  async function send(batch, kb) {
    const {table, rows} = fileRows(batch);
    const bar = el("progress", {max: "1", value: "0", "aria-label": "Files processed"});
    const summary = el("p", {role: "status", text: "uploading…"});
    area.append(el("div", {class: "job"}, summary, bar, table));
    const body = new FormData();
    for (const f of batch) body.append("files", f, f.webkitRelativePath || f.name);
    const response = await api("POST", `/v1/ingest?knowledge_base=${encodeURIComponent(kb)}`, body);
    if (response.status !== 202) {
      const why = await problemText(response);
      summary.textContent = why;
      summary.classList.add("error");
      for (const row of rows) { row.querySelector(".status").textContent = "failed"; row.querySelector(".detail").textContent = why; }
      return;
    }
    for (const row of rows) row.querySelector(".status").textContent = "queued";
    await follow(await response.json(), rows, bar, summary);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const errors = form.querySelector("[data-errors]");
    const files = [...form.elements.files.files, ...form.elements.folder.files];
    errors.textContent = files.length ? "" : "Choose files or a folder first.";
    if (!files.length) return;
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const kb = form.elements.knowledge_base.value;
      for (const batch of batches(files, Number(form.dataset.maxFiles), Number(form.dataset.maxBytes))) await send(batch, kb);
      form.reset();
    } catch (err) {
      errors.textContent = `The upload failed: ${err.message}`;
    } finally {
      release(submit);
    }
  });
})();

// --- a secret the API shows once (a new API key, a new tenant's first key) ---
document.addEventListener("api:done", (event) => {
  const form = event.target;
  const field = form.dataset?.showsSecret;
  if (!field || !event.detail) return;
  const box = form.parentElement.querySelector(".secret-box");
  box.querySelector(".secret").textContent = event.detail[field];
  box.hidden = false;
  form.hidden = true;
  box.querySelector(".secret").focus();
});
document.addEventListener("click", (event) => {
  if (event.target.closest("button[data-reload]")) location.reload();
});
