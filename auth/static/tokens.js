// Latchkey API tokens page: create (the token is shown once), revoke. Same-origin JSON requests
// only, no inline script (the CSP forbids it).
"use strict";
(function () {
  const page = document.getElementById("page");
  if (!page || page.dataset.page !== "tokens") return;
  const statusEl = document.getElementById("status");
  function say(text, kind) {
    statusEl.textContent = text;
    statusEl.className = "status" + (kind ? " " + kind : "");
  }
  async function call(method, path, body) {
    const opts = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(path, opts);
    let data = {};
    try { data = await res.json(); } catch (e) { /* empty body */ }
    if (!res.ok) {
      const err = new Error(data.error || ("Request failed (" + res.status + ")"));
      err.status = res.status;
      err.stepUp = data.step_up === true;
      throw err;
    }
    return data;
  }
  // A new token needs a passkey check from the last five minutes: latchkey.js runs it in place
  // and the request is made again (latchkey.js loads first; without it, the error is shown).
  const withStepUp = (window.latchkey && window.latchkey.withStepUp) || (fn => fn());
  const explain = (window.latchkey && window.latchkey.explain) || (e => e.message);

  document.getElementById("token-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = document.getElementById("token-name").value.trim();
    const hosts = document.getElementById("token-hosts").value.split(/[\s,]+/).filter(Boolean);
    const expires = document.getElementById("token-expiry").value;
    try {
      const res = await withStepUp(() => call("POST", "/.latchkey/api/tokens", { name: name, hosts: hosts, expires_in: expires }));
      document.getElementById("token-value").textContent = res.token;
      document.getElementById("token-new").hidden = false;
      document.getElementById("token-copy").onclick = () => navigator.clipboard &&
        navigator.clipboard.writeText(res.token).then(() => say("Token copied.", "ok"));
      say("Token created. Copy it now: it is not shown again.", "ok");
    } catch (e) {
      say(explain(e), "error");
    }
  });

  document.querySelectorAll("[data-token-action=revoke]").forEach(b => b.addEventListener("click", async () => {
    const li = b.closest("li");
    if (!window.confirm("Revoke this token? Scripts using it stop working at once.")) return;
    try {
      await call("DELETE", "/.latchkey/api/tokens/" + encodeURIComponent(li.dataset.id));
      li.dataset.status = "revoked";
      b.remove();
      say("Token revoked.", "ok");
    } catch (e) {
      say(e.message, "error");
    }
  }));
})();
