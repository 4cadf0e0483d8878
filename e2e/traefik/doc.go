// Package traefiktest runs the files that deploy/traefik ships in a real Traefik (v3.7.13, built
// from the Go module proxy by scripts/traefik-prepare) in front of a real `latchkey serve` and
// real upstream servers on 127.0.0.1, and holds them to the contract the nginx and Caddy tests
// hold their files to.
//
// It is a module of its own so that `go test ./...` in the repository root neither builds nor
// waits for Traefik. Traefik itself is built by a second module below it (build/): that one
// requires nothing but Traefik, so that the binary is Traefik v3.7.13 with the versions Traefik
// pins, not with the newer versions this module's dependency on Latchkey would select.
//
// Run it with
//
//	scripts/traefik-prepare && (cd e2e/traefik && go test ./...)
//
// The first build takes minutes; the script keeps the binary in a cache and prints its path, and
// LATCHKEY_TRAEFIK_BIN names a binary to use instead. When Traefik cannot be built the tests
// skip, except under CI=true, where that is a failure.
package traefiktest
