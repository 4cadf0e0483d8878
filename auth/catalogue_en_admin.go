package auth

// pluralsENAdmin are the English forms of the counted messages of the admin console (admin*.html, admin.js, dialog.js, the audit labels and the account operations' refusals).
var pluralsENAdmin = map[string]Forms{}
