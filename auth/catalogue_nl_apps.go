package auth

// catalogueNLApps is Dutch for the OpenID pages (consent and the apps console), the proxy's error pages (forbidden, not found, application down) and their errors.
var catalogueNLApps = map[string]string{}

// pluralsNLApps are its counted messages.
var pluralsNLApps = map[string]Forms{}
