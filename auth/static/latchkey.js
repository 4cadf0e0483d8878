// Latchkey page script. No framework, no external assets: it runs under a CSP without
// 'unsafe-inline'. It uses the browser's WebAuthn JSON helpers where present and falls back to
// manual base64url conversion elsewhere.
"use strict";
(function () {
  // A portal configured as http://localhost only works in a browser on the same machine: a
  // browser elsewhere (a headless server reached by its address) gets no passkeys. Say how to
  // reach it instead of failing at the first passkey request.
  const portal = document.body && document.body.dataset.portal;
  if (portal) {
    try {
      const u = new URL(portal);
      const local = u.hostname === "localhost" || u.hostname.endsWith(".localhost") || u.hostname === "127.0.0.1" || u.hostname === "[::1]";
      if (local && location.origin !== u.origin) {
        const port = u.port || (u.protocol === "https:" ? "443" : "80");
        const note = document.createElement("div");
        note.id = "tunnel-hint";
        note.className = "warning";
        note.setAttribute("role", "alert");
        const p1 = document.createElement("p");
        p1.textContent = "This Latchkey is set up for " + u.origin + ", which works only in a browser on the machine it runs on. " +
          "To use it from this computer, open an SSH tunnel, then open " + u.origin + "/ here:";
        const code = document.createElement("code");
        code.textContent = "ssh -L " + port + ":localhost:" + port + " you@" + location.hostname;
        const p2 = document.createElement("p");
        p2.textContent = "Or set server.public_url to an https address that this browser can reach.";
        note.append(p1, code, p2);
        const brand = document.querySelector("main .brand");
        if (brand) brand.after(note); else if (document.querySelector("main")) document.querySelector("main").prepend(note);
      }
    } catch (e) { /* not a URL: nothing to say */ }
  }

  const page = document.getElementById("page");
  if (!page) return;
  const statusEl = document.getElementById("status");

  function say(text, kind) {
    if (!statusEl) return;
    statusEl.textContent = text;
    statusEl.className = "status" + (kind ? " " + kind : "");
  }

  // --- base64url helpers for browsers without the JSON helpers ---
  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function bufToB64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creationOptions(json) {
    if (window.PublicKeyCredential && typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    const o = Object.assign({}, json);
    o.challenge = b64urlToBuf(json.challenge);
    o.user = Object.assign({}, json.user, { id: b64urlToBuf(json.user.id) });
    o.excludeCredentials = (json.excludeCredentials || []).map(c => Object.assign({}, c, { id: b64urlToBuf(c.id) }));
    return o;
  }
  function requestOptions(json) {
    if (window.PublicKeyCredential && typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    const o = Object.assign({}, json);
    o.challenge = b64urlToBuf(json.challenge);
    o.allowCredentials = (json.allowCredentials || []).map(c => Object.assign({}, c, { id: b64urlToBuf(c.id) }));
    return o;
  }
  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") {
      try { return cred.toJSON(); } catch (e) { /* fall through */ }
    }
    const r = cred.response;
    const out = { id: cred.id, rawId: bufToB64url(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}, response: {} };
    out.response.clientDataJSON = bufToB64url(r.clientDataJSON);
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64url(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = bufToB64url(r.authenticatorData);
      out.response.signature = bufToB64url(r.signature);
      if (r.userHandle) out.response.userHandle = bufToB64url(r.userHandle);
    }
    return out;
  }

  async function api(path, body) {
    const res = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body || {}),
    });
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

  // --- step-up, inline ---
  // Account-changing actions answer {"step_up": true} when this session's last passkey check is
  // more than five minutes old. stepUp runs the same ceremony as the login page's step-up mode
  // (it refreshes this session, it never makes a new one) right here, and withStepUp retries the
  // action once after it: no reload, no navigation, nothing typed.
  async function stepUp() {
    const opts = await api("/.latchkey/api/login/begin", { step_up: true });
    const cred = await navigator.credentials.get({ publicKey: requestOptions(opts.publicKey) });
    if (!cred) throw Object.assign(new Error("No passkey was used."), { name: "NotAllowedError" });
    await api("/.latchkey/api/login/finish", credentialJSON(cred));
  }
  async function withStepUp(fn) {
    try {
      return await fn();
    } catch (e) {
      if (!e.stepUp) throw e;
    }
    say("Confirm it's you with your passkey…");
    await stepUp();
    say("Confirmed.", "ok");
    try {
      return await fn();
    } catch (e) {
      // Some browsers allow one passkey prompt per click: the check is done, a second press works.
      if (e && e.name === "NotAllowedError") e = Object.assign(new Error("Confirmed. Press the button again to finish."), { status: 1 });
      throw e;
    }
  }
  // Other page scripts (tokens, admin) use the same helpers; they load after this one.
  window.latchkey = { api: api, stepUp: stepUp, withStepUp: withStepUp, explain: explain, say: say };

  // Turns an exception into words a person can act on: WebAuthn errors by name, server
  // answers by their message (the server's words are meant for people), never a stack trace.
  function explain(err) {
    switch (err && err.name) {
      case "NotAllowedError":
        return "No passkey was used. The request was cancelled or timed out, or your device could not verify you. Try again.";
      case "InvalidStateError":
        return "This device already has a passkey for this account.";
      case "SecurityError": {
        // Several domains (issue 23): a passkey of the RP ID is used on the other portals through
        // Related Origin Requests; a browser without them refuses it here.
        const rp = document.body && document.body.dataset.rpid;
        const home = document.body && document.body.dataset.rphome;
        const here = (document.body && document.body.dataset.domain) || location.hostname;
        if (rp && location.hostname !== rp && !location.hostname.endsWith("." + rp)) {
          return "This browser cannot use your " + rp + " passkey on " + location.hostname + ": it does not support " +
            "related origins, or https://" + rp + "/.well-known/webauthn does not list this site. Sign in at " +
            (home || "https://" + rp) + " instead, then choose “Continue to " + here + "” on your account page.";
        }
        return "Passkeys need a secure connection (https) on the right address.";
      }
      case "NotSupportedError":
        return "This browser or device does not support passkeys.";
      case "AbortError":
        return "The passkey request was cancelled. Try again.";
      case "TypeError":
        if (!err.status) return "Could not reach the server. Check your connection and try again.";
    }
    if (err && err.status) {
      const msg = err.message.charAt(0).toUpperCase() + err.message.slice(1);
      return /[.!?]$/.test(msg) ? msg : msg + ".";
    }
    return "Something went wrong. Try again.";
  }

  function showCodes(codes) {
    const box = document.getElementById("codes");
    const list = document.getElementById("code-list");
    if (!box || !list || !codes || !codes.length) return false;
    list.textContent = "";
    codes.forEach(c => { const li = document.createElement("li"); li.textContent = c; list.appendChild(li); });
    box.hidden = false;
    const copy = document.getElementById("copy-codes");
    if (copy) copy.onclick = () => navigator.clipboard && navigator.clipboard.writeText(codes.join("\n")).then(() => say("Codes copied.", "ok"));
    return true;
  }

  async function register(token) {
    const opts = await api("/.latchkey/api/register/begin", token ? { token: token } : {});
    const cred = await navigator.credentials.create({ publicKey: creationOptions(opts.publicKey) });
    return api("/.latchkey/api/register/finish", credentialJSON(cred));
  }

  // --- login page ---
  if (page.dataset.page === "login") {
    const button = document.getElementById("passkey-login");
    const rd = page.dataset.rd || "";
    const stepUp = page.dataset.stepup === "1";
    let conditional = null;

    // login runs one sign-in. A conditional request (passkey autofill) is started by the page,
    // not by the person, so its failures stay silent: browsers reject it when no passkey is
    // offered or the button replaced it. Once a passkey was chosen, every outcome is shown.
    async function login(mediation) {
      const opts = await api("/.latchkey/api/login/begin", { step_up: stepUp });
      const req = { publicKey: requestOptions(opts.publicKey) };
      if (mediation === "conditional") {
        conditional = new AbortController();
        req.mediation = "conditional";
        req.signal = conditional.signal;
      }
      let cred;
      try {
        cred = await navigator.credentials.get(req);
      } catch (e) {
        if (mediation === "conditional") return;
        throw e;
      }
      if (!cred) return;
      conditional = null;
      button.disabled = true;
      say("Checking your passkey…");
      try {
        const res = await api("/.latchkey/api/login/finish" + (rd ? "?rd=" + encodeURIComponent(rd) : ""), credentialJSON(cred));
        say("Signed in. Taking you there…", "ok");
        window.location.assign(res.redirect);
      } catch (e) {
        button.disabled = false;
        if (e.status) e.message += (/[.!?]$/.test(e.message) ? "" : ".") + " Try again, or use another passkey.";
        throw e;
      }
    }

    // Enter in the account field does what the button does: the field only exists to receive
    // the browser's passkey autofill, so there is nothing else for Enter to submit.
    const username = document.getElementById("username");
    if (username) username.addEventListener("keydown", ev => {
      if (ev.key === "Enter") { ev.preventDefault(); if (!button.disabled) button.click(); }
    });

    button.addEventListener("click", async () => {
      if (conditional) { conditional.abort(); conditional = null; }
      button.disabled = true;
      say("Follow your browser's prompt…");
      try { await login("modal"); } catch (e) { say(explain(e), "error"); button.disabled = false; }
    });

    if (!window.PublicKeyCredential) {
      button.disabled = true;
      say("This browser does not support passkeys. Use a current browser, or another device.", "error");
    } else if (!stepUp && document.getElementById("username") &&
               typeof PublicKeyCredential.isConditionalMediationAvailable === "function") {
      // Autofill is for choosing an account; a step-up confirms the one already signed in.
      PublicKeyCredential.isConditionalMediationAvailable().then(ok => {
        if (ok) return login("conditional");
      }).catch(e => say(explain(e), "error"));
    }
  }

  // --- continue to another domain (issue 23) ---
  if (page.dataset.page === "continue") {
    const button = document.getElementById("continue-confirm");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const res = await api("/.latchkey/api/domains/redeem", { token: page.dataset.token || "" });
        say("Signed in. Taking you there…", "ok");
        window.location.assign(res.redirect);
      } catch (e) { say(explain(e), "error"); }
    });
  }
  document.querySelectorAll("button[data-continue]").forEach(b => b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      const res = await api("/.latchkey/api/domains/continue", { domain: b.dataset.continue, rd: b.dataset.rd || "" });
      window.location.assign(res.redirect);
    } catch (e) { say(explain(e), "error"); b.disabled = false; }
  }));

  // --- sign-out confirmation ---
  if (page.dataset.page === "logout") {
    const button = document.getElementById("logout-confirm");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const rd = page.dataset.rd || "";
        const res = await api("/.latchkey/logout" + (rd ? "?rd=" + encodeURIComponent(rd) : ""), {});
        say("Signed out.", "ok");
        window.location.assign(res.redirect || "/.latchkey/login");
      } catch (e) { say(explain(e), "error"); button.disabled = false; }
    });
  }

  // --- enrolment page ---
  if (page.dataset.page === "enroll") {
    const button = document.getElementById("passkey-register");
    button.addEventListener("click", async () => {
      button.disabled = true;
      say("Follow your browser's prompt…");
      try {
        const res = await register(page.dataset.token || "");
        button.hidden = true;
        say("Your passkey is ready.", "ok");
        if (!showCodes(res.recovery_codes)) window.location.assign(res.redirect || "/.latchkey/account");
      } catch (e) {
        say(explain(e), "error");
        button.disabled = false;
      }
    });
  }

  // --- recovery page ---
  if (page.dataset.page === "recover") {
    const form = document.getElementById("recover-form");
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      say("Checking…");
      try {
        const res = await api("/.latchkey/api/recover", { user: form.user.value.trim(), code: form.code.value.trim() });
        window.location.assign(res.redirect || "/.latchkey/enroll");
      } catch (e) { say(e.message, "error"); }
    });
    const email = document.getElementById("email-form");
    if (email) email.addEventListener("submit", async ev => {
      ev.preventDefault();
      try {
        await api("/.latchkey/api/recover/email", { user: email.user.value.trim() });
        say("If that account has an e-mail address, a link is on its way. It works once, for 15 minutes.", "ok");
      } catch (e) { say(e.message, "error"); }
    });
  }

  // --- recovery link confirmation ---
  // The e-mailed link only shows this page (mail scanners open links too); the person's click
  // uses the link up and starts the restricted session.
  if (page.dataset.page === "recover-link") {
    const button = document.getElementById("recover-link-continue");
    button.addEventListener("click", async () => {
      button.disabled = true;
      say("Checking the link…");
      try {
        const res = await api("/.latchkey/api/recover/link", { token: page.dataset.token || "" });
        say("Taking you to create a new passkey…", "ok");
        window.location.assign(res.redirect || "/.latchkey/enroll");
      } catch (e) {
        say(explain(e), "error");
        // A refused link stays refused; other failures (network, rate limit) may be retried.
        if (e.status === 403) button.hidden = true; else button.disabled = false;
      }
    });
  }

  // --- account page ---
  if (page.dataset.page === "account") {
    const act = async (fn, okText) => {
      try { const res = await withStepUp(fn); if (okText) say(okText, "ok"); return res; } catch (e) { say(explain(e), "error"); }
    };
    document.getElementById("passkey-add").addEventListener("click", () => act(async () => {
      say("Follow your browser's prompt…");
      await register("");
      window.location.reload();
    }));
    document.getElementById("codes-regenerate").addEventListener("click", () => {
      if (!window.confirm("Make new recovery codes? The old ones stop working.")) return;
      act(async () => {
        const res = await api("/.latchkey/api/recovery-codes", {});
        showCodes(res.recovery_codes);
        const left = document.getElementById("codes-left");
        if (left) left.textContent = res.recovery_codes.length + " unused recovery codes.";
      }, "New recovery codes made. Store them now.");
    });
    const emailForm = document.getElementById("email-change");
    if (emailForm) emailForm.addEventListener("submit", ev => {
      ev.preventDefault();
      const input = document.getElementById("email-input");
      act(async () => {
        const res = await api("/.latchkey/api/account/email", { email: input.value.trim() });
        input.value = res.email;
        const shown = document.getElementById("account-email");
        if (shown) shown.textContent = res.email || "none";
      }, input.value.trim() ? "E-mail address saved." : "E-mail address removed.");
    });
    document.getElementById("revoke-all").addEventListener("click", () => act(async () => {
      const tokens = document.getElementById("revoke-tokens");
      const res = await api("/.latchkey/api/sessions/revoke-all", { tokens: !tokens || tokens.checked });
      // This browser is signed out too. The page stays to say what ended, with the way back in.
      page.querySelectorAll("section, #logout").forEach(el => { el.hidden = true; });
      const again = document.getElementById("sign-in-again");
      if (again) { again.href = res.redirect || "/.latchkey/login"; again.hidden = false; }
      say((res.message || "Signed out everywhere.") + " This browser is signed out as well.", "ok");
    }));
    document.getElementById("logout").addEventListener("click", () => act(async () => {
      const res = await api("/.latchkey/logout", {});
      window.location.assign(res.redirect || "/.latchkey/login");
    }));
    document.querySelectorAll("[data-action]").forEach(b => b.addEventListener("click", () => {
      const li = b.closest("li");
      const id = li && li.dataset.id;
      if (b.dataset.action === "rename") {
        const current = li.querySelector(".passkey-name").textContent;
        const name = window.prompt("New name for this passkey", current);
        if (!name) return;
        act(async () => { await api("/.latchkey/api/passkeys/rename", { id: id, name: name }); li.querySelector(".passkey-name").textContent = name; }, "Passkey renamed.");
      } else if (b.dataset.action === "remove") {
        if (!window.confirm("Remove this passkey? It will no longer sign you in.")) return;
        act(async () => {
          const res = await api("/.latchkey/api/passkeys/remove", { id: id });
          // Removing the passkey this browser signed in with ends its session: go where the server says.
          if (res.redirect) window.location.assign(res.redirect); else li.remove();
        }, "Passkey removed.");
      } else if (b.dataset.action === "revoke") {
        act(async () => { const res = await api("/.latchkey/api/sessions/revoke", { id: id }); if (res.redirect) window.location.assign(res.redirect); else li.remove(); }, "Session ended.");
      }
    }));
  }
})();
