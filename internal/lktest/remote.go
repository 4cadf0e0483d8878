package lktest

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

// Remote returns an Env for a Latchkey that the test serves itself (for example the command's
// own wiring) at serverURL, seen by browsers as the portal public. Only Client and Origin work on
// it: it has no store, auth service or clock of its own.
func Remote(t testing.TB, serverURL string, public *url.URL) *Env {
	return &Env{T: t, Server: &httptest.Server{URL: serverURL}, Public: public}
}
