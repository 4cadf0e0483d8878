// Package proxy holds Latchkey's authorisation front: the forward-auth endpoints, the
// reverse proxy, and the pure decision logic they share.
//
// The decision logic is deliberately free of I/O so that it can be table-tested and fuzzed:
//
//   - CanonicalHost and NormalizePath turn the request's host and path into the one
//     representation that rules are matched against ("canonicalise once, at the edge").
//     NormalizePath refuses paths that different upstreams could read differently
//     (ErrAmbiguousPath) instead of guessing which reading is meant.
//   - TrustedProxies decides whose forwarding headers are believed and which address is
//     the client for network rules.
//   - Rules compiles access_control and picks the first matching rule for a Request; a
//     miss yields the default policy, never "allow".
//   - RedirectPolicy validates the rd parameter structurally (parsed URL, exact host or
//     dot-boundary suffix) and falls back to the account page.
//
// Everything on the hot path (CanonicalHost for an already canonical host, NormalizePath for
// an already canonical path, Rules.Match, TrustedProxies.ClientAddr) avoids allocation.
package proxy
