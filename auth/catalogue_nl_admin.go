package auth

// catalogueNLAdmin is Dutch for the admin console (admin*.html, admin.js, dialog.js, the audit labels and the account operations' refusals).
var catalogueNLAdmin = map[string]string{}

// pluralsNLAdmin are its counted messages.
var pluralsNLAdmin = map[string]Forms{}
