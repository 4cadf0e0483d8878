package auth

// catalogueDEAccount is German for the account and API token pages (account.html, tokens.html, their scripts and errors).
var catalogueDEAccount = map[string]string{}

// pluralsDEAccount are its counted messages.
var pluralsDEAccount = map[string]Forms{}
