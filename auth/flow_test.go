package auth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

func TestEnrolLoginAccount(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: []proxy.RuleConfig{{Hosts: []string{"app.localhost"}, Policy: "passkey"}}})
	_, token := env.AddUser("alice", "staff")
	pk := lktest.NewPasskey()

	page := env.Client().Get("/.latchkey/enroll?token=" + token)
	if page.StatusCode != http.StatusOK || !strings.Contains(string(page.Body), `id="passkey-register"`) ||
		!strings.Contains(string(page.Body), "personal-device-warning") {
		t.Fatalf("enrol page: %d\n%s", page.StatusCode, page.Body)
	}

	b := env.Client()
	codes := b.Enrol(pk, token)
	if len(codes) != 10 {
		t.Fatalf("got %d recovery codes, want 10", len(codes))
	}
	if b.Session() == "" {
		t.Fatal("enrolment through a link did not sign the user in")
	}

	// A second browser signs in with the passkey.
	b2 := env.Client()
	if rd := b2.Login(pk, ""); !strings.HasSuffix(rd, "/.latchkey/account") {
		t.Fatalf("redirect after login = %q", rd)
	}
	acct := b2.Get("/.latchkey/account")
	if acct.StatusCode != http.StatusOK || !strings.Contains(string(acct.Body), `id="signed-in-user">alice<`) {
		t.Fatalf("account page: %d\n%s", acct.StatusCode, acct.Body)
	}

	r := b2.Forward("app.localhost", "/dash?x=1", nil)
	if r.StatusCode != http.StatusOK || r.Header.Get("Remote-User") != "alice" || r.Header.Get("Remote-Groups") != "staff" ||
		r.Header.Get("Remote-Email") != "alice@example.com" {
		t.Fatalf("forward auth: %d %v", r.StatusCode, r.Header)
	}

	// The token was consumed.
	if r := env.Client().PostJSON("/.latchkey/api/register/begin", map[string]string{"token": token}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("second use of the enrolment token: %d %s", r.StatusCode, r.Body)
	}
}
