package auth

// catalogueNLAccount is Dutch for the account and API token pages (account.html, tokens.html, their scripts and errors).
var catalogueNLAccount = map[string]string{}

// pluralsNLAccount are its counted messages.
var pluralsNLAccount = map[string]Forms{}
