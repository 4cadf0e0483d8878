package auth

// catalogueFRAdmin is French for the admin console (admin*.html, admin.js, dialog.js, the audit labels and the account operations' refusals).
var catalogueFRAdmin = map[string]string{}

// pluralsFRAdmin are its counted messages.
var pluralsFRAdmin = map[string]Forms{}
