package auth

// pluralsENAccount are the English forms of the counted messages of the account and API token pages (account.html, tokens.html, their scripts and errors).
var pluralsENAccount = map[string]Forms{
	"%d unused recovery codes.":      {"one": "%d unused recovery code.", "other": "%d unused recovery codes."},
	"{n} unused recovery codes.":     {"one": "{n} unused recovery code.", "other": "{n} unused recovery codes."},
	"Signed out {n} other sessions.": {"one": "Signed out {n} other session.", "other": "Signed out {n} other sessions."},
	"This is your only passkey. Without it you will sign in with a recovery code ({n} left) until you add a passkey.": {"one": "This is your only passkey. Without it you will sign in with a recovery code ({n} left) until you add a passkey.", "other": "This is your only passkey. Without it you will sign in with a recovery code ({n} left) until you add a passkey."},
	"%d days":  {"one": "%d day", "other": "%d days"},
	"%d years": {"one": "%d year", "other": "%d years"},
}
