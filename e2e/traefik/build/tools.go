//go:build tools

// This file keeps Traefik's command in go.mod: the tests build it with
// `go build github.com/traefik/traefik/v3/cmd/traefik` from this module.
package build

import _ "github.com/traefik/traefik/v3/cmd/traefik"
