// Latchkey API tokens page: create (the token is shown once), revoke. Same-origin JSON requests
// only, no inline script (the CSP forbids it).
"use strict";
(function () {
  const page = document.getElementById("page");
  if (!page || page.dataset.page !== "tokens") return;
  const lk = window.latchkey || {};
  const say = lk.say || (() => {});
  const ask = lk.ask || (async () => false);
  const refresh = lk.refresh || (async () => {});
  // Words in the page's language (latchkey.js); English, filled the same way, without it.
  const t = lk.t || ((key, vars) => key.replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m)));
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
      const err = new Error(data.error || t("Request failed ({status})", { status: res.status }));
      err.status = res.status;
      err.stepUp = data.step_up === true;
      throw err;
    }
    return data;
  }
  // A new token needs a passkey check from the last five minutes: latchkey.js runs it in place
  // and the request is made again (latchkey.js loads first; without it, the error is shown).
  const withStepUp = lk.withStepUp || (fn => fn());
  const explain = lk.explain || (e => e.message);

  const form = document.getElementById("token-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = document.getElementById("token-name").value.trim();
    const hosts = document.getElementById("token-hosts").value.split(/[\s,]+/).filter(Boolean);
    const expires = document.getElementById("token-expiry").value;
    try {
      const res = await withStepUp(() => call("POST", "/.latchkey/api/tokens", { name: name, hosts: hosts, expires_in: expires }), form);
      document.getElementById("token-value").textContent = res.token;
      document.getElementById("token-new").hidden = false;
      const copy = document.getElementById("token-copy");
      copy.onclick = () => navigator.clipboard &&
        navigator.clipboard.writeText(res.token).then(() => say(t("Token copied."), "ok", copy));
      form.reset();
      await refresh(["tokens"]);
      say(t("Token “{name}” created. Copy it now: it is not shown again.", { name: name }), "ok", form);
    } catch (e) {
      say(explain(e), "error", form);
    }
  });

  // One listener for every row, also for rows the list refresh put in.
  page.addEventListener("click", async ev => {
    const b = ev.target.closest("[data-token-action=revoke]");
    if (!b) return;
    const li = b.closest("li");
    const tokenName = (li.querySelector("strong") || {}).textContent || t("this token");
    if (!await ask({ title: t("Revoke “{name}”?", { name: tokenName }), text: t("Scripts using it stop working at once."), ok: t("Revoke token"), danger: true })) return;
    try {
      await call("DELETE", "/.latchkey/api/tokens/" + encodeURIComponent(li.dataset.id));
      await refresh(["tokens"]);
      say(t("Token “{name}” revoked.", { name: tokenName }), "ok", document.getElementById("tokens"));
    } catch (e) {
      say(explain(e), "error", document.getElementById("tokens"));
    }
  });
})();
