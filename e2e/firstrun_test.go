package e2e

import (
	"strings"
	"testing"
)

// TestTunnelHintOnAHeadlessServer: a browser that reaches a localhost-configured Latchkey by
// another address (as on a headless server) is told how to get there with an SSH tunnel,
// instead of meeting a passkey error; on the configured address the page says nothing of it.
func TestTunnelHintOnAHeadlessServer(t *testing.T) {
	srv := startServer(t, serverConfig{})
	tb := newTab(t, tabOptions{})
	tb.navigate(srv.URL + "/.latchkey/login")
	if tb.visible("tunnel-hint") {
		t.Fatal("the tunnel hint shows on the configured address")
	}
	other := strings.Replace(srv.URL, "localhost", "127.0.0.1", 1)
	tb.navigate(other + "/.latchkey/login")
	tb.waitFor("the tunnel hint", `!!document.getElementById("tunnel-hint")`)
	text := tb.text("tunnel-hint")
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	if want := "ssh -L " + port + ":localhost:" + port + " you@127.0.0.1"; !strings.Contains(text, want) {
		t.Errorf("hint %q lacks %q", text, want)
	}
	tb.shot("tunnel-hint")
}
