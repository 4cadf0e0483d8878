package auth

// pluralsENAdmin are the English forms of the counted messages of the admin console (admin*.html, admin.js, dialog.js, the audit labels and the account operations' refusals).
var pluralsENAdmin = map[string]Forms{
	"%d passkeys":            {"one": "%d passkey", "other": "%d passkeys"},
	"%d days":                {"one": "%d day", "other": "%d days"},
	"%d sessions ended.":     {"one": "%d session ended.", "other": "%d sessions ended."},
	"%d API tokens revoked.": {"one": "%d API token revoked.", "other": "%d API tokens revoked."},
	"at most %d characters":  {"one": "at most %d character", "other": "at most %d characters"},
}
