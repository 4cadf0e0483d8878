// Latchkey admin console: user actions as same-origin JSON requests (the CSRF guard refuses
// anything else), enrolment links and their QR code shown once. No inline script: the CSP
// forbids it. An answer with step_up means the admin's passkey check is too old: it is renewed
// in place and the action retried. Lists update in place, and each message appears next to the
// action that caused it.
"use strict";
(function () {
  const page = document.getElementById("page");
  if (!page || !/^admin/.test(page.dataset.page || "")) return;
  const lk = window.latchkey || {};
  // Words come from the page's catalogue (latchkey.js): the English text is the key, {name}
  // marks are filled after translation.
  const t = lk.t || ((key, vars) => key.replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m)));
  const say = lk.say || (() => {});
  const ask = lk.ask || (async () => false);
  const refresh = lk.refresh || (async () => window.location.reload());
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
  const withStepUp = lk.withStepUp || (fn => fn());
  const explain = lk.explain || (e => e.message);
  async function act(near, fn, okText) {
    // Where the outcome goes is decided now: the button may be replaced by the refresh.
    const where = lk.statusFor ? lk.statusFor(near) : near;
    try {
      const res = await withStepUp(fn, where);
      if (okText) say(typeof okText === "function" ? okText(res) : okText, "ok", where);
      return res;
    } catch (e) {
      say(explain(e), "error", where);
    }
  }
  // sentence writes a translated sentence into el with nodes where its {marks} are, so that a
  // part of it (the user's name) keeps its own element whatever the word order.
  function sentence(el, text, nodes) {
    el.textContent = "";
    for (const part of text.split(/(\{\w+\})/)) {
      const node = /^\{\w+\}$/.test(part) && nodes[part.slice(1, -1)];
      if (node) el.append(node); else if (part) el.append(part);
    }
  }
  function showEnrolment(name, res) {
    const who = document.createElement("span");
    who.id = "enrolment-user";
    who.textContent = name;
    const ttl = document.createElement("span");
    ttl.id = "enrolment-ttl";
    ttl.textContent = res.expires_in || "";
    const head = document.createElement("strong");
    sentence(head, t("One-time enrolment link for {name}."), { name: who });
    const rest = document.createElement("span");
    sentence(rest, t("It is shown only now and works once, for {ttl}. Send it to them, or let them scan the code with their phone."), { ttl: ttl });
    document.getElementById("enrolment-text").replaceChildren(head, " ", rest);
    const a = document.getElementById("enrolment-link");
    a.textContent = res.link;
    a.href = res.link;
    document.getElementById("enrolment-qr").src = res.qr;
    const copy = document.getElementById("enrolment-copy");
    copy.onclick = () => navigator.clipboard &&
      navigator.clipboard.writeText(res.link).then(() => say(t("Link copied."), "ok", copy));
    document.getElementById("enrolment").hidden = false;
  }

  // --- users page: add a user in a dialog, the list updates in place ---
  const dialog = document.getElementById("user-add-dialog");
  const addForm = document.getElementById("user-add");
  if (dialog && addForm) {
    const opener = document.getElementById("user-add-open");
    const reset = () => {
      addForm.reset();
      addForm.hidden = false;
      document.getElementById("enrolment").hidden = true;
      say("", "", addForm);
    };
    opener.addEventListener("click", () => {
      reset();
      dialog.showModal();
      document.getElementById("user-name").focus();
    });
    // Escape and the buttons close it; focus goes back to the button that opened it.
    dialog.addEventListener("close", () => { opener.focus(); });
    document.getElementById("user-add-cancel").addEventListener("click", () => dialog.close());
    document.getElementById("enrolment-done").addEventListener("click", () => dialog.close());
    addForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const name = document.getElementById("user-name").value.trim();
      act(addForm, async () => {
        const res = await call("POST", "/.latchkey/api/admin/users", {
          name: name,
          display_name: document.getElementById("user-display").value.trim(),
          email: document.getElementById("user-email").value.trim(),
          groups: document.getElementById("user-groups").value.split(",").map(g => g.trim()).filter(Boolean),
        });
        addForm.reset();
        addForm.hidden = true;
        showEnrolment(name, res);
        say(t("User {name} added.", { name: name }), "ok", document.getElementById("enrolment-copy"));
        await refresh(["users"]);
        say(t("User {name} added. Their enrolment link is shown once, in the dialog.", { name: name }), "ok", opener);
        document.getElementById("enrolment-done").focus();
        return res;
      });
    });
  }

  const userID = page.dataset.user;
  if (!userID) return;
  const base = "/.latchkey/api/admin/users/" + encodeURIComponent(userID);
  const on = (id, fn) => { const el = document.getElementById(id); if (el) el.addEventListener("click", () => fn(el)); };
  const name = page.dataset.name;
  // Parts of the user page that an action changes, re-rendered by the server in place.
  const parts = ["user-lead", "user-actions", "passkeys", "sessions", "sessions-all", "tokens"];
  async function rebind() { await refresh(parts); bindActions(); }

  function bindActions() {
    on("user-invite", b => act(b, async () => showEnrolment(name, await call("POST", base + "/invite", {})), t("New enrolment link made; earlier links no longer work.")));
    on("user-disable", async b => {
      if (!await ask({ title: t("Disable {name}?", { name: name }), text: t("Their sessions, API tokens and unused links end at once. Enabling them later brings none of it back."),
        ok: t("Disable {name}", { name: name }), danger: true })) return;
      act(b, async () => { const res = await call("POST", base + "/disable", {}); await rebind(); return res; },
        res => res.message || t("{name} is disabled.", { name: name }));
    });
    on("user-enable", b => act(b, async () => { await call("POST", base + "/enable", {}); await rebind(); }, t("{name} is enabled: their passkeys work again.", { name: name })));
    on("user-remove", async b => {
      if (!await ask({ title: t("Remove {name}?", { name: name }), text: t("Their passkeys, sessions and API tokens are deleted. This cannot be undone; the audit log keeps their events."),
        ok: t("Remove {name}", { name: name }), danger: true })) return;
      act(b, async () => { const res = await call("DELETE", base); window.location.assign(res.redirect || "/.latchkey/admin"); });
    });
    on("sessions-revoke-all", async b => {
      if (!await ask({ title: t("Sign {name} out everywhere?", { name: name }), text: t("Every session of theirs ends at once."), ok: t("Sign out everywhere"), danger: true })) return;
      act(b, async () => {
        const tokens = document.getElementById("revoke-tokens");
        const res = await call("POST", base + "/sessions/revoke", { all: true, tokens: !tokens || tokens.checked });
        await rebind();
        return res;
      }, res => res.message || t("Signed out everywhere."));
    });
  }
  bindActions();

  page.addEventListener("click", async ev => {
    const b = ev.target.closest("[data-admin-action]");
    if (!b) return;
    const li = b.closest("li");
    const section = b.closest("section");
    if (b.dataset.adminAction === "passkey-remove") {
      const pk = (li.querySelector(".passkey-name") || {}).textContent || "";
      const last = document.querySelectorAll("#passkeys li[data-id]").length === 1;
      if (!await ask({ title: pk ? t("Remove “{name}”?", { name: pk }) : t("Remove this passkey?"),
        text: last ? t("Sessions made with it end at once. It is {name}'s only passkey: they will need a recovery code or a new enrolment link to sign in.", { name: name })
          : t("Sessions made with it end at once."),
        ok: t("Remove passkey"), danger: true })) return;
      act(section, async () => { await call("POST", base + "/passkeys/remove", { id: li.dataset.id }); await rebind(); },
        pk ? t("Passkey “{name}” removed.", { name: pk }) : t("Passkey removed."));
    } else if (b.dataset.adminAction === "session-revoke") {
      act(section, async () => { await call("POST", base + "/sessions/revoke", { id: li.dataset.id }); await rebind(); }, t("Session ended."));
    }
  });
})();
