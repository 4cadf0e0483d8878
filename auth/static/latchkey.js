// Latchkey page script. No framework, no external assets: it runs under a CSP without
// 'unsafe-inline'. It uses the browser's WebAuthn JSON helpers where present and falls back to
// manual base64url conversion elsewhere.
"use strict";
(function () {
  // Words: the page renders this script's messages, in the page's language, into a JSON block
  // (issue 21); the English text is the key. {name} marks are filled from vars.
  let messages = {};
  try { messages = JSON.parse((document.getElementById("messages") || {}).textContent || "{}") || {}; } catch (e) { /* English */ }
  const lang = document.documentElement.lang || undefined;
  const nf = window.Intl ? new Intl.NumberFormat(lang) : null;
  function fill(s, vars) {
    return vars ? s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? (typeof vars[k] === "number" && nf ? nf.format(vars[k]) : String(vars[k])) : m)) : s;
  }
  function t(key, vars) {
    const s = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
    return fill(typeof s === "string" ? s : key, vars);
  }
  // tn is t for a message with a count, {n}: the page carries its plural forms, and the
  // browser's own plural rules for the page's language pick one (English if the page has none).
  const pr = window.Intl && Intl.PluralRules ? new Intl.PluralRules(lang) : null;
  function tn(key, n, vars) {
    const forms = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : null;
    let s = key;
    if (forms && typeof forms === "object") {
      const cat = pr ? pr.select(n) : (n === 1 ? "one" : "other");
      s = forms[cat] || forms.other || key;
    }
    return fill(s, Object.assign({ n: n }, vars || {}));
  }
  // Without WebAuthn the pages cannot do anything; say why. Browsers hide WebAuthn entirely on a
  // page that is not a secure context (http on an address other than localhost), which would
  // otherwise read as "this browser does not support passkeys".
  function noPasskeys() {
    if (window.PublicKeyCredential && navigator.credentials) return "";
    if (window.isSecureContext === false) {
      return t("This page is not on a secure (https) connection, so the browser offers no passkeys here. Open it at its https address, or ask your administrator to set one up.");
    }
    return t("This browser does not support passkeys. Use a current browser, or another device.");
  }

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
        p1.textContent = t("This portal is set up for {origin}, which works only in a browser on the machine it runs on. To use it from this computer, open an SSH tunnel, then open {origin}/ here:", { origin: u.origin });
        const code = document.createElement("code");
        code.textContent = "ssh -L " + port + ":localhost:" + port + " you@" + location.hostname;
        const p2 = document.createElement("p");
        p2.textContent = t("Or set server.public_url to an https address that this browser can reach.");
        note.append(p1, code, p2);
        const brand = document.querySelector("main .brand");
        if (brand) brand.after(note); else if (document.querySelector("main")) document.querySelector("main").prepend(note);
      }
    } catch (e) { /* not a URL: nothing to say */ }
  }

  // Dates: the server writes <time datetime="ISO">exact UTC</time>; shown here in the reader's
  // time zone and words ("2 minutes ago", "in 30 days"), with the exact local time on hover.
  const rtf = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(lang, { numeric: "auto" }) : null;
  const dtf = window.Intl ? new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }) : null;
  function relative(d) {
    const s = (d.getTime() - Date.now()) / 1000, a = Math.abs(s);
    if (a < 45) return s <= 0 ? t("just now") : t("in a few seconds");
    const units = [["minute", 60, 3600], ["hour", 3600, 86400], ["day", 86400, 30 * 86400], ["month", 30 * 86400, 365 * 86400], ["year", 365 * 86400, Infinity]];
    for (const [unit, size, below] of units) if (a < below) return rtf.format(Math.round(s / size), unit);
    return "";
  }
  function formatTimes(root) {
    if (!rtf || !dtf) return;
    (root || document).querySelectorAll("time[datetime]").forEach(el => {
      const d = new Date(el.dateTime);
      if (isNaN(d.getTime())) return;
      el.title = dtf.format(d);
      el.textContent = relative(d);
    });
  }
  formatTimes(document);

  const page = document.getElementById("page");
  if (!page) return;
  const statusEl = document.getElementById("status");

  // statusFor finds where a message about an action belongs: the status line of the section
  // holding the element that caused it (next to the button), else the page's.
  function statusFor(near) {
    let sec = near && near.closest ? near.closest("section, form") : null;
    while (sec) {
      const m = sec.querySelector(":scope > .status");
      if (m) return m;
      sec = sec.parentElement ? sec.parentElement.closest("section, form") : null;
    }
    return statusEl;
  }
  // say shows a message next to near (an element of the action), or in the page's status line.
  function say(text, kind, near) {
    const el = statusFor(near);
    if (!el) return;
    el.textContent = text;
    el.className = "status" + (kind ? " " + kind : "");
  }

  // refresh replaces the elements with these ids by their new server rendering: lists update in
  // place after an action, from the same template as on a full load.
  async function refresh(ids) {
    const res = await fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } });
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    for (const id of ids) {
      const now = document.getElementById(id), next = doc.getElementById(id);
      if (now && next) { now.replaceWith(next); formatTimes(next); }
      else if (now && !next) now.remove();
    }
  }

  // ask is the in-page dialog (dialog.js) with its buttons' default words in the page's language.
  const dialogAsk = window.latchkeyDialog && window.latchkeyDialog.ask;
  const ask = dialogAsk ? (o => dialogAsk(Object.assign({ ok: t("OK"), cancel: t("Cancel") }, o))) : (async () => false);

  // WebAuthn Signal API, where the browser has it: tell the password manager which passkeys the
  // server still accepts (it drops the others) and the user's current names. Failures are not
  // the person's business: the sign-in or removal already happened.
  async function signal(sig) {
    if (!sig || !window.PublicKeyCredential) return;
    const jobs = [];
    if (typeof PublicKeyCredential.signalAllAcceptedCredentials === "function") {
      jobs.push(PublicKeyCredential.signalAllAcceptedCredentials({ rpId: sig.rp_id, userId: sig.user_id, allAcceptedCredentialIds: sig.credential_ids || [] }));
    }
    if (typeof PublicKeyCredential.signalCurrentUserDetails === "function") {
      jobs.push(PublicKeyCredential.signalCurrentUserDetails({ rpId: sig.rp_id, userId: sig.user_id, name: sig.name, displayName: sig.display_name }));
    }
    try { await Promise.allSettled(jobs); } catch (e) { /* nothing to do */ }
  }
  async function signalUnknown(rpId, credentialId) {
    if (!window.PublicKeyCredential || typeof PublicKeyCredential.signalUnknownCredential !== "function" || !rpId || !credentialId) return;
    try { await PublicKeyCredential.signalUnknownCredential({ rpId: rpId, credentialId: credentialId }); } catch (e) { /* nothing to do */ }
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
      const err = new Error(data.error || t("Request failed ({status})", { status: res.status }));
      err.status = res.status;
      err.stepUp = data.step_up === true;
      err.unknownCredential = data.unknown_credential === true;
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
    if (!cred) throw Object.assign(new Error(t("No passkey was used.")), { name: "NotAllowedError" });
    const res = await api("/.latchkey/api/login/finish", credentialJSON(cred));
    await signal(res.signal);
  }
  async function withStepUp(fn, near) {
    try {
      return await fn();
    } catch (e) {
      if (!e.stepUp) throw e;
    }
    say(t("Confirm it's you with your passkey…"), "", near);
    await stepUp();
    say(t("Confirmed."), "ok", near);
    try {
      return await fn();
    } catch (e) {
      // Some browsers allow one passkey prompt per click: the check is done, a second press works.
      if (e && e.name === "NotAllowedError") e = Object.assign(new Error(t("Confirmed. Press the button again to finish.")), { status: 1 });
      throw e;
    }
  }
  // Other page scripts (tokens, admin) use the same helpers; they load after this one.
  window.latchkey = { t: t, tn: tn, lang: lang, api: api, stepUp: stepUp, withStepUp: withStepUp, explain: explain, say: say, ask: ask,
    refresh: refresh, formatTimes: formatTimes, signal: signal, statusFor: statusFor };

  // Turns an exception into words a person can act on: WebAuthn errors by name, server
  // answers by their message (the server's words are meant for people), never a stack trace.
  function explain(err) {
    switch (err && err.name) {
      case "NotAllowedError":
        return t("No passkey was used. The request was cancelled or timed out, or your device could not verify you. Try again.");
      case "InvalidStateError":
        return t("This device already has a passkey for this account.");
      case "SecurityError": {
        // Several domains (issue 23): a passkey of the RP ID is used on the other portals through
        // Related Origin Requests; a browser without them refuses it here.
        const rp = document.body && document.body.dataset.rpid;
        const home = document.body && document.body.dataset.rphome;
        const here = (document.body && document.body.dataset.domain) || location.hostname;
        if (rp && location.hostname !== rp && !location.hostname.endsWith("." + rp)) {
          return t("This browser cannot use your {rp} passkey on {host}: it does not support related origins, or https://{rp}/.well-known/webauthn does not list this site. Sign in at {home} instead, then choose “Continue to {here}” on your account page.",
            { rp: rp, host: location.hostname, home: home || "https://" + rp, here: here });
        }
        return t("Passkeys need a secure connection (https) on the right address.");
      }
      case "NotSupportedError":
        return t("This browser or device does not support passkeys.");
      case "AbortError":
        return t("The passkey request was cancelled. Try again.");
      case "TypeError":
        if (!err.status) return t("Could not reach the server. Check your connection and try again.");
    }
    if (err && err.status) {
      const msg = err.message.charAt(0).toUpperCase() + err.message.slice(1);
      return /[.!?]$/.test(msg) ? msg : msg + ".";
    }
    return t("Something went wrong. Try again.");
  }

  function showCodes(codes) {
    const box = document.getElementById("codes");
    const list = document.getElementById("code-list");
    if (!box || !list || !codes || !codes.length) return false;
    list.textContent = "";
    codes.forEach(c => { const li = document.createElement("li"); li.textContent = c; list.appendChild(li); });
    box.hidden = false;
    const copy = document.getElementById("copy-codes");
    if (copy) copy.onclick = () => navigator.clipboard && navigator.clipboard.writeText(codes.join("\n")).then(() => say(t("Codes copied."), "ok", copy));
    // Download: a text file made here (a Blob URL), never sent anywhere.
    const dl = document.getElementById("download-codes");
    if (dl) {
      const who = page.dataset.user || (document.querySelector(".lead strong") || {}).textContent || "";
      const made = window.Intl ? new Intl.DateTimeFormat(lang, { dateStyle: "long", timeStyle: "long" }).format(new Date()) : new Date().toString();
      const text = (who ? t("Recovery codes for {user} at {host}", { user: who, host: location.host }) : t("Recovery codes at {host}", { host: location.host })) + "\n" +
        t("Made {date}", { date: made }) + "\n" +
        t("Each code works once, with or without the dashes. Use one at {url}", { url: location.origin + "/.latchkey/recover" }) + "\n\n" +
        codes.map((c, i) => (i + 1 < 10 ? " " : "") + (i + 1) + ". " + c).join("\n") + "\n";
      if (dl.dataset.url) URL.revokeObjectURL(dl.dataset.url);
      dl.dataset.url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
      dl.href = dl.dataset.url;
    }
    const print = document.getElementById("print-codes");
    if (print) print.onclick = () => window.print(); // the print stylesheet shows only the codes
    return true;
  }

  // nameNew shows the new passkey's name in an editable field, to rename it right there.
  function nameNew(passkey, onSaved) {
    const form = document.getElementById("new-passkey");
    const input = document.getElementById("new-passkey-name");
    if (!form || !input || !passkey) return;
    input.value = passkey.name || "";
    form.hidden = false;
    form.onsubmit = async ev => {
      ev.preventDefault();
      const name = input.value.trim();
      if (!name) { say(t("A passkey needs a name."), "error", form); return; }
      try {
        const res = await api("/.latchkey/api/passkeys/rename", { id: passkey.id, name: name });
        passkey.name = res.name;
        say(t("Saved: this passkey is called “{name}”.", { name: res.name }), "ok", form);
        if (onSaved) onSaved(res.name);
      } catch (e) { say(explain(e), "error", form); }
    };
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
      say(t("Checking your passkey…"));
      try {
        const res = await api("/.latchkey/api/login/finish" + (rd ? "?rd=" + encodeURIComponent(rd) : ""), credentialJSON(cred));
        say(t("Signed in. Taking you there…"), "ok");
        await signal(res.signal);
        window.location.assign(res.redirect);
      } catch (e) {
        button.disabled = false;
        if (e.unknownCredential) {
          // The server does not know this passkey (removed from the account): the password
          // manager may drop it, so that it is not offered again.
          await signalUnknown(opts.publicKey && opts.publicKey.rpId, cred.id);
        } else if (e.status) e.message += (/[.!?]$/.test(e.message) ? "" : ".") + " " + t("Try again, or use another passkey.");
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
      say(t("Follow your browser's prompt…"));
      try { await login("modal"); } catch (e) { say(explain(e), "error"); button.disabled = false; }
    });

    if (noPasskeys()) {
      button.disabled = true;
      say(noPasskeys(), "error");
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
        say(t("Signed in. Taking you there…"), "ok");
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
        say(t("Signed out."), "ok");
        window.location.assign(res.redirect || "/.latchkey/login");
      } catch (e) { say(explain(e), "error"); button.disabled = false; }
    });
  }

  // --- enrolment page ---
  if (page.dataset.page === "enroll") {
    const button = document.getElementById("passkey-register");
    if (noPasskeys()) {
      button.disabled = true;
      say(noPasskeys(), "error");
    }
    button.addEventListener("click", async () => {
      button.disabled = true;
      say(t("Follow your browser's prompt…"));
      try {
        const res = await register(page.dataset.token || "");
        button.hidden = true;
        say(t("Your passkey is ready."), "ok");
        await signal(res.signal);
        nameNew(res.passkey);
        const cont = document.getElementById("continue");
        if (cont) {
          cont.href = res.redirect || "/.latchkey/account";
          if (!showCodes(res.recovery_codes)) cont.textContent = t("Continue to your account");
          cont.hidden = false;
        } else if (!showCodes(res.recovery_codes)) window.location.assign(res.redirect || "/.latchkey/account");
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
      say(t("Checking…"));
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
        say(t("If that account has an e-mail address, a link is on its way. It works once, for 15 minutes."), "ok");
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
      say(t("Checking the link…"));
      try {
        const res = await api("/.latchkey/api/recover/link", { token: page.dataset.token || "" });
        say(t("Taking you to create a new passkey…"), "ok");
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
    // act runs an action (renewing the passkey check in place when asked) and shows its outcome
    // next to the element that started it.
    const act = async (near, fn, okText) => {
      // Where the outcome goes is decided now: the button may be replaced by the list refresh.
      const where = statusFor(near);
      try {
        const res = await withStepUp(fn, where);
        if (okText) say(typeof okText === "function" ? okText(res) : okText, "ok", where);
        return res;
      } catch (e) { say(explain(e), "error", where); }
    };
    const addButton = document.getElementById("passkey-add");
    if (noPasskeys()) {
      addButton.disabled = true;
      say(noPasskeys(), "error", addButton);
    }
    addButton.addEventListener("click", () => act(addButton, async () => {
      say(t("Follow your browser's prompt…"), "", addButton);
      const res = await register("");
      await signal(res.signal);
      await refresh(["passkeys", "last-passkey-hint"]);
      nameNew(res.passkey, () => refresh(["passkeys"]));
      const input = document.getElementById("new-passkey-name");
      if (input) { input.focus(); input.select(); }
      return res;
    }, t("Passkey added. Give it a name you will recognise, or keep this one.")));

    const regen = document.getElementById("codes-regenerate");
    regen.addEventListener("click", async () => {
      if (!await ask({ title: t("Make new recovery codes?"), text: t("Your current recovery codes stop working at once. Store the new ones before you leave this page."),
        ok: t("Make new codes") })) return;
      act(regen, async () => {
        const res = await api("/.latchkey/api/recovery-codes", {});
        showCodes(res.recovery_codes);
        const left = document.getElementById("codes-left");
        if (left) left.textContent = tn("{n} unused recovery codes.", res.recovery_codes.length);
        const list = document.getElementById("passkeys");
        if (list) list.dataset.codes = String(res.recovery_codes.length);
        await refresh(["last-passkey-hint"]);
      }, t("New recovery codes made. Store them now."));
    });

    const emailForm = document.getElementById("email-change");
    if (emailForm) emailForm.addEventListener("submit", ev => {
      ev.preventDefault();
      const input = document.getElementById("email-input");
      act(emailForm, async () => {
        const res = await api("/.latchkey/api/account/email", { email: input.value.trim() });
        input.value = res.email;
        const shown = document.getElementById("account-email");
        if (shown) shown.textContent = res.email || t("no e-mail address");
      }, input.value.trim() ? t("E-mail address saved.") : t("E-mail address removed."));
    });

    const revokeAll = document.getElementById("revoke-all");
    revokeAll.addEventListener("click", async () => {
      if (!await ask({ title: t("Sign out everywhere?"), text: t("Every session of yours ends, this browser's too. You sign in again with a passkey."),
        ok: t("Sign out everywhere"), danger: true })) return;
      act(revokeAll, async () => {
        const tokens = document.getElementById("revoke-tokens");
        const res = await api("/.latchkey/api/sessions/revoke-all", { tokens: !tokens || tokens.checked });
        // This browser is signed out too. The page stays to say what ended, with the way back in.
        page.querySelectorAll("section, #logout").forEach(el => { el.hidden = true; });
        const again = document.getElementById("sign-in-again");
        if (again) { again.href = res.redirect || "/.latchkey/login"; again.hidden = false; }
        say((res.message || t("Signed out everywhere.")) + " " + t("This browser is signed out as well."), "ok");
      });
    });
    document.getElementById("logout").addEventListener("click", () => act(null, async () => {
      const res = await api("/.latchkey/logout", {});
      window.location.assign(res.redirect || "/.latchkey/login");
    }));

    // removeText says what removing a passkey means, plainly, before it happens.
    function removeText(li) {
      const list = document.getElementById("passkeys");
      const count = list ? list.querySelectorAll("li[data-id]").length : 0;
      const codes = list ? Number(list.dataset.codes || 0) : 0;
      if (count <= 1) {
        return codes > 0
          ? tn("This is your only passkey. Without it you will sign in with a recovery code ({n} left) until you add a passkey.", codes)
          : t("This is your only passkey and you have no unused recovery code: removing it is refused. Add another passkey or make new recovery codes first.");
      }
      if (li.dataset.current === "1") return t("It will no longer sign you in, and this browser, which signed in with it, is signed out.");
      return t("It will no longer sign you in, and the sessions made with it end.");
    }

    async function removePasskey(li, near) {
      const name = (li.querySelector(".passkey-name, strong") || {}).textContent || t("this passkey");
      if (!await ask({ title: t("Remove “{name}”?", { name: name }), text: removeText(li), ok: t("Remove passkey"), danger: true })) return;
      await act(near, async () => {
        const res = await api("/.latchkey/api/passkeys/remove", { id: li.dataset.id });
        await signal(res.signal); // the password manager drops it too
        // Removing the passkey this browser signed in with ends its session: go where the server says.
        if (res.redirect) { window.location.assign(res.redirect); return res; }
        if (li.closest("#lost-passkeys")) li.remove();
        await refresh(["passkeys", "last-passkey-hint", "sessions"]);
        return res;
      }, t("Passkey “{name}” removed.", { name: name }));
    }

    const endOthers = document.getElementById("end-other-sessions");
    if (endOthers) endOthers.addEventListener("click", async () => {
      if (!await ask({ title: t("Sign out all other sessions?"), text: t("Every browser signed in as you, except this one, is signed out at once."),
        ok: t("Sign them out"), danger: true })) return;
      act(endOthers, async () => {
        const others = [...document.querySelectorAll("#sessions li[data-id]:not([data-current])")];
        for (const li of others) await api("/.latchkey/api/sessions/revoke", { id: li.dataset.id });
        await refresh(["sessions"]);
        endOthers.hidden = true;
        return others.length;
      }, n => tn("Signed out {n} other sessions.", n));
    });

    // One listener for every row, also for rows that replaced the first ones (refresh).
    page.addEventListener("click", async ev => {
      const b = ev.target.closest("[data-action]");
      if (!b) return;
      const li = b.closest("li");
      const id = li && li.dataset.id;
      if (b.dataset.action === "rename") {
        const nameEl = li.querySelector(".passkey-name");
        const name = await ask({ title: t("Rename passkey"), field: { label: t("Name"), value: nameEl.textContent, maxLength: 64 }, ok: t("Save name") });
        if (!name) return;
        act(b, async () => {
          const res = await api("/.latchkey/api/passkeys/rename", { id: id, name: name });
          await refresh(["passkeys"]);
          return res;
        }, res => t("Renamed to “{name}”.", { name: res.name }));
      } else if (b.dataset.action === "remove" || b.dataset.action === "remove-lost") {
        removePasskey(li, b);
      } else if (b.dataset.action === "revoke") {
        const current = li.dataset.current === "1";
        if (current && !await ask({ title: t("Sign out this browser?"), text: t("This session ends; you sign in again with a passkey."), ok: t("Sign out"), danger: true })) return;
        act(b, async () => {
          const res = await api("/.latchkey/api/sessions/revoke", { id: id });
          if (res.redirect) window.location.assign(res.redirect); else await refresh(["sessions"]);
        }, t("Session ended."));
      }
    });
  }
})();
