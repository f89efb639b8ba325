// Who reads what, and single sign-on: the console's forms whose JSON the generic form code (console.js)
// cannot build: a document's metadata, an access list (one document, or the selected ones), and the
// tenant's identity provider. Each is a <form data-custom="..." data-url="/v1/...">; what the API
// answers is announced next to it, as for every other form.
"use strict";

(() => {
  const {api, problemText, announce} = Console;

  // The access editor (_access_editor.html): null for the whole tenant, else the checked readers.
  function accessOf(form) {
    const mode = form.querySelector('input[name="access_mode"]:checked');
    if (!mode || mode.value === "tenant") return null;
    const checked = (name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
    return {users: checked("users"), groups: checked("groups"), api_keys: checked("api_keys")};
  }

  function readersSummary(access) {
    if (access === null) return "the whole tenant";
    const form = document.querySelector('form[data-custom="access"]');
    const names = [...form.querySelectorAll(".readers input:checked")].map((i) => i.dataset.label);  // as the server says
    return names.length ? `admins and ${names.join(", ")}` : "admins only";
  }

  const words = (text, separators) => text.split(separators).map((s) => s.trim()).filter(Boolean);

  // Each returns [method, body] for the form's data-url, or throws an Error whose message is shown.
  const bodies = {
    metadata(form) {
      let metadata;
      try {
        metadata = JSON.parse(form.elements.metadata.value || "{}");
      } catch (err) {
        throw new Error(`The metadata is not JSON: ${err.message}`);
      }
      if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
        throw new Error('The metadata must be a JSON object, such as {"team": "hr"}.');
      }
      return ["PATCH", {metadata}];
    },
    access(form) {
      return ["PUT", {access: accessOf(form)}];
    },
    "bulk-access"(form) {
      const ids = [...form.elements].filter((e) => e.name === "document_ids" && e.checked).map((e) => e.value);
      if (!ids.length) throw new Error("Select documents in the table first.");
      return ["PUT", {document_ids: ids, access: accessOf(form)}];
    },
    "identity-provider"(form) {
      const f = form.elements;
      const body = {
        issuer: f.issuer.value.trim(),
        client_id: f.client_id.value.trim(),
        allowed_domains: words(f.allowed_domains.value, /[\s,]+/),  // a domain has neither
        scopes: words(f.scopes.value, /\s+/),  // a scope may hold a comma, never a space
        groups_claim: f.groups_claim.value.trim() || null,
        default_role: f.default_role.value,
        token_auth_method: f.token_auth_method.value || null,
      };
      if (f.remove_secret?.checked) body.client_secret = "";  // removed: a public client
      else if (f.client_secret.value) body.client_secret = f.client_secret.value;  // else the stored one stays
      return ["PUT", body];
    },
  };

  // What the page shows once the API has accepted the change.
  const done = {
    async metadata(form, answer) {
      form.elements.metadata.value = JSON.stringify(answer.metadata, null, 2);
      return "Metadata saved.";
    },
    async access(form, answer) {
      document.getElementById("access-summary").textContent = readersSummary(answer.access);
      return "Access saved: it applies from the next request of every reader.";
    },
    async "bulk-access"(form, answer) {
      const table = document.getElementById("documents");
      await htmx.ajax("GET", location.pathname + location.search, {target: table, swap: "innerHTML"});
      return `Access set for ${answer.items.length} document${answer.items.length === 1 ? "" : "s"}.`;
    },
    async "identity-provider"() {
      location.reload();  // the sign-in link and the stored secret's note appear with the saved settings
      return "Saved.";
    },
  };

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    const kind = form.dataset?.custom;
    if (!kind || !Object.hasOwn(bodies, kind)) return;
    event.preventDefault();
    const errors = form.querySelector("[data-errors]");
    const status = document.getElementById("status");
    announce(errors, "");
    let request;
    try {
      request = bodies[kind](form);
    } catch (err) {
      announce(errors, err.message, true);
      return;
    }
    const submit = event.submitter;
    if (submit) submit.disabled = true;
    try {
      const response = await api(request[0], form.dataset.url, request[1]);
      if (!response.ok) {
        announce(errors, await problemText(response), true);
        return;
      }
      announce(status, await done[kind](form, await response.json()));
    } catch (err) {
      announce(errors, `The request failed: ${err.message}`, true);
    } finally {
      if (submit) submit.disabled = false;
    }
  });

  // Checking a reader means "only these": the radio follows, so the list is not saved as the whole tenant.
  document.addEventListener("change", (event) => {
    const box = event.target;
    if (box.closest?.(".readers") && box.checked) {
      const listed = box.closest(".access-editor").querySelector('input[value="listed"]');
      if (listed) listed.checked = true;
    }
    const all = box.dataset?.selectAll;
    if (all) {
      for (const row of document.querySelectorAll(`input[name="${all}"]`)) row.checked = box.checked;
    }
  });

  // <button data-api=... data-then-go="/console/..."> (a deletion): once done, that console page.
  document.addEventListener("api:done", (event) => {
    const go = event.target.dataset?.thenGo;
    if (go && go.startsWith("/console/")) location.assign(go);
  });
})();
