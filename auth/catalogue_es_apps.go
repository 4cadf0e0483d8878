package auth

// catalogueESApps is Spanish for the OpenID pages (consent and the apps console), the proxy's error pages (forbidden, not found, application down) and their errors.
var catalogueESApps = map[string]string{}

// pluralsESApps are its counted messages.
var pluralsESApps = map[string]Forms{}
