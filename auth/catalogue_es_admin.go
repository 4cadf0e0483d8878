package auth

// catalogueESAdmin is Spanish for the admin console (admin*.html, admin.js, dialog.js, the audit labels and the account operations' refusals).
var catalogueESAdmin = map[string]string{}

// pluralsESAdmin are its counted messages.
var pluralsESAdmin = map[string]Forms{}
