package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
)

// configPath is the config file startServer wrote for srv ("" when it was started without one).
func (s *server) configPath() string {
	p := filepath.Join(filepath.Dir(s.DataDir), "latchkey.yaml")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// cli runs a latchkey subcommand against srv's store and config, as an operator would while
// the server runs, and returns its standard output.
func cli(t *testing.T, srv *server, args ...string) string {
	t.Helper()
	if p := srv.configPath(); p != "" {
		args = append(args, "--config", p)
	}
	cmd := exec.Command(suite.bin, args...)
	cmd.Dir = filepath.Dir(srv.DataDir)
	cmd.Env = append(os.Environ(), "LATCHKEY_DATA_DIR="+srv.DataDir, "LATCHKEY_SERVER_PUBLIC_URL="+srv.URL)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("latchkey %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// addUser creates a user with `latchkey user add` and returns the enrolment link it printed
// (its last line).
func addUser(t *testing.T, srv *server, name string, flags ...string) string {
	t.Helper()
	out := cli(t, srv, append([]string{"user", "add", name}, flags...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	link := strings.TrimSpace(lines[len(lines)-1])
	if !strings.HasPrefix(link, srv.URL+"/.latchkey/enroll?token=") {
		t.Fatalf("latchkey user add %s printed no enrolment link for %s:\n%s", name, srv.URL, out)
	}
	return link
}

// enrolUser runs the enrolment flow of enrol (flows_test.go) on another user's link in a fresh
// browser context, and returns that user's passkey, unplugged, for other tabs to use.
func enrolUser(t *testing.T, srv *server, link string) (*tab, []*cdpwebauthn.Credential) {
	t.Helper()
	tb := newTab(t, tabOptions{})
	other := *srv
	other.EnrolURL = link
	auth := enrol(t, tb, &other)
	creds := tb.credentials(auth)
	tb.removeAuthenticator(auth)
	return tb, creds
}

// echoUpstream is an application behind the reverse proxy that shows the identity headers and
// cookies it received (appPage of nginx_test.go).
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		appPage.Execute(w, map[string]string{"User": r.Header.Get("Remote-User"),
			"Groups": r.Header.Get("Remote-Groups"), "Cookies": r.Header.Get("Cookie")})
	}))
	t.Cleanup(app.Close)
	return app
}

// fetchStatus is the HTTP status the page's origin answers for a same-origin GET of path with
// the tab's cookies, redirects not followed (an opaque redirect reads as 0).
func (tb *tab) fetchStatus(path string) int {
	tb.t.Helper()
	b, _ := json.Marshal(path)
	return eval[int](tb, fmt.Sprintf(`fetch(%s, {credentials: "same-origin", redirect: "manual", headers: {Accept: "text/html"}}).then(r => r.status)`, b))
}

// checkNoOverflow fails when the page is wider than the viewport (a horizontal scroll bar on a
// phone) and names the widest elements that stick out.
func (tb *tab) checkNoOverflow(where string) {
	tb.t.Helper()
	type overflow struct {
		Scroll  int      `json:"scroll"`
		Client  int      `json:"client"`
		Culprit []string `json:"culprit"`
	}
	o := eval[overflow](tb, `(() => {
		const d = document.documentElement, w = d.clientWidth, out = [];
		// Elements inside a container that scrolls or clips on its own do not widen the page.
		const clipped = e => { for (let a = e.parentElement; a && a !== document.body; a = a.parentElement)
			if (getComputedStyle(a).overflowX !== "visible") return true; return false; };
		for (const e of document.body.querySelectorAll("*")) {
			const r = e.getBoundingClientRect();
			if (r.right <= w + 1 || clipped(e)) continue;
			if (r.right > w + 1 && out.length < 5) out.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : "") + " right=" + Math.round(r.right));
		}
		return {scroll: d.scrollWidth, client: w, culprit: out};
	})()`)
	if o.Scroll > o.Client+1 || len(o.Culprit) > 0 {
		tb.t.Errorf("%s: page is %d px wide in a %d px viewport; sticking out: %v", where, o.Scroll, o.Client, o.Culprit)
	}
}

// checkButtonsOneLine fails when a visible button's label wraps onto several lines (a row of
// buttons squeezed on a phone).
func (tb *tab) checkButtonsOneLine(where string) {
	tb.t.Helper()
	wrapped := eval[[]string](tb, `[...document.querySelectorAll("button, .button")].filter(b => {
		if (!b.checkVisibility()) return false;
		const lh = parseFloat(getComputedStyle(b).lineHeight) || 24;
		const r = document.createRange(); r.selectNodeContents(b);
		return r.getClientRects().length > 0 && r.getBoundingClientRect().height > 1.5 * lh;
	}).map(b => (b.id ? "#" + b.id : b.tagName.toLowerCase()) + " " + JSON.stringify(b.textContent.trim()))`)
	if len(wrapped) > 0 {
		tb.t.Errorf("%s: button labels wrap onto several lines: %v", where, wrapped)
	}
}
