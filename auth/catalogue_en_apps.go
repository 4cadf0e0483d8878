package auth

// pluralsENApps are the English forms of the counted messages of the OpenID pages (consent and the apps console), the proxy's error pages (forbidden, not found, application down) and their errors.
var pluralsENApps = map[string]Forms{}
