package auth

// catalogueDEApps is German for the OpenID pages (consent and the apps console), the proxy's error pages (forbidden, not found, application down) and their errors.
var catalogueDEApps = map[string]string{}

// pluralsDEApps are its counted messages.
var pluralsDEApps = map[string]Forms{}
