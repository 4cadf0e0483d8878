package auth

// pluralsENAccount are the English forms of the counted messages of the account and API token pages (account.html, tokens.html, their scripts and errors).
var pluralsENAccount = map[string]Forms{}
