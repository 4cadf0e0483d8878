// Latchkey in-page dialogs: the pages never call prompt(), confirm() or alert() (issue 20). One
// <dialog> element, built on first use, asks a question or takes one line of text. showModal()
// keeps focus inside it; focus starts on the field (or on the safe button) and returns to the
// button that opened it; Escape cancels. Loaded by the layout before the page scripts, it runs
// under the CSP without inline script or style.
"use strict";
(function () {
  let dlg = null;
  // The buttons' default words, from the page's catalogue (latchkey.js, which loads after this
  // script but before anything opens a dialog).
  const t = key => (window.latchkey && window.latchkey.t ? window.latchkey.t(key) : key);

  function build() {
    dlg = document.createElement("dialog");
    dlg.id = "lk-dialog";
    dlg.className = "lk-dialog";
    dlg.setAttribute("aria-labelledby", "lk-dialog-title");
    dlg.setAttribute("aria-describedby", "lk-dialog-text");
    const form = document.createElement("form");
    form.method = "dialog";
    const h = document.createElement("h2");
    h.id = "lk-dialog-title";
    const p = document.createElement("p");
    p.id = "lk-dialog-text";
    const label = document.createElement("label");
    label.id = "lk-dialog-label";
    label.htmlFor = "lk-dialog-input";
    const input = document.createElement("input");
    input.id = "lk-dialog-input";
    input.type = "text";
    input.autocomplete = "off";
    const actions = document.createElement("p");
    actions.className = "lk-dialog-actions";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.id = "lk-dialog-cancel";
    const ok = document.createElement("button");
    ok.type = "submit";
    ok.id = "lk-dialog-ok";
    ok.value = "ok";
    actions.append(cancel, ok);
    form.append(h, p, label, input, actions);
    dlg.append(form);
    cancel.addEventListener("click", () => dlg.close("cancel"));
    // A click on the backdrop (outside the dialog's box) cancels, like Escape.
    dlg.addEventListener("click", ev => {
      if (ev.target !== dlg) return;
      const r = dlg.getBoundingClientRect();
      if (ev.clientX < r.left || ev.clientX > r.right || ev.clientY < r.top || ev.clientY > r.bottom) dlg.close("cancel");
    });
    (document.querySelector("main") || document.body).append(dlg);
  }

  // ask opens the dialog and resolves to true (confirmed) or false (cancelled), or, with a field,
  // to the trimmed text ("" counts as cancelled and resolves to null).
  //   title, text: what is asked and what it means
  //   ok: the confirming button's words ("OK"); cancel: the other's ("Cancel"), translated
  //   by the caller
  //   danger: the confirming button is red, and focus starts on Cancel
  //   field: {label, value, maxLength} for one line of text
  function ask(o) {
    if (!dlg) build();
    const opener = document.activeElement;
    const $ = id => document.getElementById(id);
    $("lk-dialog-title").textContent = o.title || "";
    $("lk-dialog-text").textContent = o.text || "";
    $("lk-dialog-text").hidden = !o.text;
    const input = $("lk-dialog-input"), label = $("lk-dialog-label");
    input.hidden = label.hidden = !o.field;
    input.required = !!o.field;
    if (o.field) {
      label.textContent = o.field.label || "";
      input.value = o.field.value || "";
      input.maxLength = o.field.maxLength || 200;
    }
    const ok = $("lk-dialog-ok"), cancel = $("lk-dialog-cancel");
    ok.textContent = o.ok || t("OK");
    ok.className = o.danger ? "danger-solid" : "primary";
    cancel.textContent = o.cancel || t("Cancel");
    dlg.returnValue = "";
    return new Promise(resolve => {
      dlg.addEventListener("close", () => {
        const confirmed = dlg.returnValue === "ok";
        if (opener && typeof opener.focus === "function" && document.contains(opener)) opener.focus();
        if (!o.field) resolve(confirmed);
        else resolve(confirmed && input.value.trim() ? input.value.trim() : null);
      }, { once: true });
      dlg.showModal();
      if (o.field) { input.focus(); input.select(); } else if (o.danger) cancel.focus(); else ok.focus();
    });
  }

  window.latchkeyDialog = { ask: ask };
})();
