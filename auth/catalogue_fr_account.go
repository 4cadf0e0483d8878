package auth

// catalogueFRAccount is French for the account and API token pages (account.html, tokens.html, their scripts and errors).
var catalogueFRAccount = map[string]string{}

// pluralsFRAccount are its counted messages.
var pluralsFRAccount = map[string]Forms{}
