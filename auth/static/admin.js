// Latchkey admin console: user actions as same-origin JSON requests (the CSRF guard refuses
// anything else), enrolment links and their QR code shown once. No inline script: the CSP
// forbids it. An answer with step_up means the admin's passkey check is too old: it is renewed
// in place and the action retried.
"use strict";
(function () {
  const page = document.getElementById("page");
  if (!page || !/^admin/.test(page.dataset.page || "")) return;
  const statusEl = document.getElementById("status");
  function say(text, kind) {
    if (!statusEl) return;
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
      if (res.status === 401 && !err.stepUp) {
        // Signed out meanwhile: sign in and come back.
        window.location.assign("/.latchkey/login?rd=" + encodeURIComponent(window.location.href));
      }
      throw err;
    }
    return data;
  }
  // An admin's passkey check older than five minutes is renewed in place (latchkey.js), then the
  // action runs again.
  const withStepUp = (window.latchkey && window.latchkey.withStepUp) || (fn => fn());
  async function act(fn, okText) {
    try {
      const res = await withStepUp(fn);
      if (okText) say(okText, "ok");
      return res;
    } catch (e) {
      say(e.message, "error");
    }
  }
  function showEnrolment(name, res) {
    document.getElementById("enrolment-user").textContent = name;
    document.getElementById("enrolment-ttl").textContent = res.expires_in || "7 days";
    const a = document.getElementById("enrolment-link");
    a.textContent = res.link;
    a.href = res.link;
    document.getElementById("enrolment-qr").src = res.qr;
    document.getElementById("enrolment-copy").onclick = () => navigator.clipboard &&
      navigator.clipboard.writeText(res.link).then(() => say("Link copied.", "ok"));
    document.getElementById("enrolment").hidden = false;
  }

  const addForm = document.getElementById("user-add");
  if (addForm) {
    addForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const name = document.getElementById("user-name").value.trim();
      act(async () => {
        const res = await call("POST", "/.latchkey/api/admin/users", {
          name: name,
          display_name: document.getElementById("user-display").value.trim(),
          email: document.getElementById("user-email").value.trim(),
          groups: document.getElementById("user-groups").value.split(",").map(g => g.trim()).filter(Boolean),
        });
        showEnrolment(name, res);
        addForm.reset();
      }, "User " + name + " added.");
    });
  }

  const userID = page.dataset.user;
  if (!userID) return;
  const base = "/.latchkey/api/admin/users/" + encodeURIComponent(userID);
  const on = (id, fn) => { const el = document.getElementById(id); if (el) el.addEventListener("click", fn); };
  on("user-invite", () => act(async () => showEnrolment(page.dataset.name, await call("POST", base + "/invite", {})), "New enrolment link made; earlier links no longer work."));
  on("user-disable", () => {
    if (!window.confirm("Disable " + page.dataset.name + "? Their sessions end at once.")) return;
    act(async () => { await call("POST", base + "/disable", {}); window.location.reload(); });
  });
  on("user-enable", () => act(async () => { await call("POST", base + "/enable", {}); window.location.reload(); }));
  on("user-remove", () => {
    if (!window.confirm("Remove " + page.dataset.name + " with their passkeys and sessions? This cannot be undone.")) return;
    act(async () => { const res = await call("DELETE", base); window.location.assign(res.redirect || "/.latchkey/admin"); });
  });
  on("sessions-revoke-all", () => act(async () => {
    const tokens = document.getElementById("revoke-tokens");
    const res = await call("POST", base + "/sessions/revoke", { all: true, tokens: !tokens || tokens.checked });
    document.querySelectorAll("#sessions li[data-id]").forEach(li => li.remove());
    say(res.message || "Signed out everywhere.", "ok");
  }));
  document.querySelectorAll("[data-admin-action]").forEach(b => b.addEventListener("click", () => {
    const li = b.closest("li");
    if (b.dataset.adminAction === "passkey-remove") {
      if (!window.confirm("Remove this passkey? Sessions made with it end.")) return;
      act(async () => { await call("POST", base + "/passkeys/remove", { id: li.dataset.id }); li.remove(); }, "Passkey removed.");
    } else if (b.dataset.adminAction === "session-revoke") {
      act(async () => { await call("POST", base + "/sessions/revoke", { id: li.dataset.id }); li.remove(); }, "Session ended.");
    }
  }));
})();
