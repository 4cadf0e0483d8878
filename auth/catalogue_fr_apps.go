package auth

// catalogueFRApps is French for the OpenID pages (consent and the apps console), the proxy's error pages (forbidden, not found, application down) and their errors.
var catalogueFRApps = map[string]string{}

// pluralsFRApps are its counted messages.
var pluralsFRApps = map[string]Forms{}
