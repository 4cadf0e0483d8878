package auth

// pluralsEN are the English forms of the sign-in pages' counted messages: the source text of a
// message with a count is its "other" form, which is also its key.
var pluralsEN = map[string]Forms{}
