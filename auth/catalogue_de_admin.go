package auth

// catalogueDEAdmin is German for the admin console (admin*.html, admin.js, dialog.js, the audit labels and the account operations' refusals).
var catalogueDEAdmin = map[string]string{}

// pluralsDEAdmin are its counted messages.
var pluralsDEAdmin = map[string]Forms{}
