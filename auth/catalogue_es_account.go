package auth

// catalogueESAccount is Spanish for the account and API token pages (account.html, tokens.html, their scripts and errors).
var catalogueESAccount = map[string]string{}

// pluralsESAccount are its counted messages.
var pluralsESAccount = map[string]Forms{}
