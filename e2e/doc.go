// Package e2e holds Latchkey's end-to-end tests: they build the real latchkey binary, start it
// (and, for the forward-auth path, a real Nginx) as child processes, and drive headless Chromium
// through the DevTools protocol with a virtual WebAuthn authenticator, so that the page script,
// the WebAuthn JSON encoding, the cookies and the redirects are tested together.
//
// The tests need the chromium and nginx binaries (Debian packages chromium and nginx). Without
// them they skip with a message, except under CI=true, where a missing browser is a failure.
// `go test -short` skips them too. Screenshots of every page a flow passes through are written
// to the folder named in the test output (LATCHKEY_SCREENSHOTS chooses it).
//
// The several-domains flows (issue 23) run over TLS: TestMain makes a self-signed certificate
// for example.net and example.org, maps both (and their subdomains) to one reserved port with
// --host-resolver-rules, so that https URLs need no port (the browser fetches the RP ID's
// /.well-known/webauthn on the default one), and trusts that certificate alone by its public key
// (--ignore-certificate-errors-spki-list). Other flows are unaffected.
package e2e
