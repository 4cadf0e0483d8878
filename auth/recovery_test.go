package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// from returns a new browser whose requests come, through the trusted local proxy, from ip.
func from(env *lktest.Env, ip string) *lktest.Client {
	b := env.Client()
	b.Header.Set("X-Forwarded-For", ip)
	return b
}

func recoverCode(b *lktest.Client, user, code string) *lktest.Response {
	return b.PostJSON("/.latchkey/api/recover", map[string]string{"user": user, "code": code})
}

// finishRecovery enrols a new passkey from a restricted session and checks the result: the
// browser ends with a passkey session, the new passkey and every old one sign in.
func finishRecovery(t *testing.T, env *lktest.Env, b *lktest.Client, m member, method string) *lktest.Passkey {
	t.Helper()
	restrictedCookie := b.Session()
	if n := env.Count("sessions", "user_id = ? AND method = ? AND revoked_at = 0", m.user.ID, method); n != 1 {
		t.Fatalf("%d live %s sessions, want 1", n, method)
	}
	if allowed(b, m.user.Name) {
		t.Fatal("a recovery session passes forward auth")
	}
	if r := b.Get("/.latchkey/account"); r.StatusCode != http.StatusFound || !strings.HasSuffix(r.Header.Get("Location"), "/.latchkey/enroll") {
		t.Fatalf("account page in a recovery session: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if r := b.Get("/.latchkey/enroll"); r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), `id="passkey-register"`) {
		t.Fatalf("enrol page in a recovery session: %d", r.StatusCode)
	}
	before := env.Count("credentials", "user_id = ?", m.user.ID)
	pk := lktest.NewPasskey()
	if codes := b.Enrol(pk, ""); len(codes) != 0 {
		t.Fatalf("recovery enrolment showed %d new codes", len(codes))
	}
	if env.Count("credentials", "user_id = ?", m.user.ID) != before+1 {
		t.Fatal("the new passkey was not added")
	}
	if b.Session() == restrictedCookie || !allowed(b, m.user.Name) {
		t.Fatal("after enrolling, the browser does not hold a working passkey session")
	}
	if env.Count("sessions", "user_id = ? AND method = ? AND revoked_at = 0", m.user.ID, method) != 0 {
		t.Fatal("the recovery session is still live after enrolment")
	}
	for name, p := range map[string]*lktest.Passkey{"new": pk, "old": m.pk} {
		nb := env.Client()
		nb.Login(p, "")
		if !allowed(nb, m.user.Name) {
			t.Fatalf("the %s passkey does not sign in after recovery", name)
		}
	}
	return pk
}

func TestRecoveryCodeFlow(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice, bob := join(t, env, "alice"), join(t, env, "bob")

	recovering := from(env, "203.0.113.10")
	page := recovering.Get("/.latchkey/recover")
	if page.StatusCode != http.StatusOK || !strings.Contains(string(page.Body), `id="recover-form"`) || strings.Contains(string(page.Body), `id="email-form"`) {
		t.Fatalf("recover page (no mailer): %d", page.StatusCode)
	}
	r := recoverCode(recovering, "alice", alice.codes[2])
	var out struct {
		Redirect string `json:"redirect"`
	}
	if r.StatusCode != http.StatusOK || r.JSON(&out) != nil || !strings.HasSuffix(out.Redirect, "/.latchkey/enroll") || recovering.Session() == "" {
		t.Fatalf("recover: %d %s", r.StatusCode, r.Body)
	}
	if env.Count("audit", "event = 'recovery_code_used' AND user_id = ?", alice.user.ID) != 1 {
		t.Fatal("use of a recovery code not audited")
	}
	if env.Count("recovery_codes", "user_id = ? AND used_at = 0", alice.user.ID) != 9 {
		t.Fatal("the code was not marked used")
	}
	// A recovery session cannot make API tokens or reach the admin area either.
	if r := recovering.PostJSON("/.latchkey/api/tokens", map[string]any{"name": "x", "hosts": []string{"app.localhost"}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("token from a recovery session: %d", r.StatusCode)
	}
	finishRecovery(t, env, recovering, alice, auth.MethodRecoveryCode)

	for _, tc := range []struct{ name, user, code string }{
		{"used code", "alice", alice.codes[2]},
		{"another user's code", "alice", bob.codes[0]},
		{"own code under another user's name", "bob", alice.codes[3]},
		{"unknown user", "mallory", alice.codes[3]},
		{"empty code", "alice", ""},
		{"oversized code", "alice", strings.Repeat("A", 10000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := env.Tables()
			b := from(env, "203.0.113.11")
			r := recoverCode(b, tc.user, tc.code)
			if r.StatusCode != http.StatusUnauthorized || errorOf(r) != "this recovery code is not valid for this account" {
				t.Fatalf("%d %s, want 401 with the one refusal message", r.StatusCode, r.Body)
			}
			if b.Session() != "" {
				t.Fatal("a refused recovery set a session cookie")
			}
			unchanged(t, env, before, "a refused recovery code")
		})
	}
	// The refusals above were all charged to one address and two accounts; bob's own code still
	// works from elsewhere.
	if r := recoverCode(from(env, "203.0.113.12"), "bob", bob.codes[0]); r.StatusCode != http.StatusOK {
		t.Fatalf("bob's code: %d %s", r.StatusCode, r.Body)
	}
}

// TestRecoveryCodeBruteForce is HOSTILE PUB-28: after a few failures the account is throttled
// for every address, the right code included; other accounts are not; the right code works again
// once the window has passed.
func TestRecoveryCodeBruteForce(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice, bob := join(t, env, "alice"), join(t, env, "bob")
	before := env.Tables()
	attacker := from(env, "198.51.100.1")

	failures := 0
	var limited *lktest.Response
	for i := 0; i < 20; i++ {
		r := recoverCode(attacker, "alice", fmt.Sprintf("0000-0000-0000-%04d", i))
		if r.StatusCode == http.StatusTooManyRequests {
			limited = r
			break
		}
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong code %d: %d %s", i, r.StatusCode, r.Body)
		}
		failures++
	}
	if limited == nil || failures != 5 {
		t.Fatalf("throttled after %d failures (limited=%t), want after 5", failures, limited != nil)
	}
	if s, err := strconv.Atoi(limited.Header.Get("Retry-After")); err != nil || s <= 0 {
		t.Fatalf("Retry-After = %q", limited.Header.Get("Retry-After"))
	}
	if r := recoverCode(attacker, "alice", alice.codes[0]); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the right code while locked out: %d, want 429", r.StatusCode)
	}
	for i := 0; i < 20; i++ {
		b := from(env, fmt.Sprintf("192.0.2.%d", i+1))
		if r := recoverCode(b, "alice", alice.codes[0]); r.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("the right code from a 20th address while locked out: %d, want 429", r.StatusCode)
		}
	}
	unchanged(t, env, before, "throttled recovery attempts")

	t.Run("other accounts are not locked out", func(t *testing.T) {
		b := from(env, "203.0.113.20")
		if r := recoverCode(b, "bob", bob.codes[0]); r.StatusCode != http.StatusOK {
			t.Fatalf("bob: %d %s", r.StatusCode, r.Body)
		}
	})

	t.Run("one address guessing across accounts is throttled", func(t *testing.T) {
		sprayer := from(env, "198.51.100.2")
		n := 0
		for ; n < 30; n++ {
			r := recoverCode(sprayer, fmt.Sprintf("user%d", n), "0000-0000-0000-0000")
			if r.StatusCode == http.StatusTooManyRequests {
				break
			}
		}
		if n != 10 {
			t.Fatalf("address throttled after %d attempts, want 10", n)
		}
		if r := recoverCode(sprayer, "bob", bob.codes[1]); r.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("right code from a throttled address: %d", r.StatusCode)
		}
	})

	t.Run("the right code works after the window", func(t *testing.T) {
		env.Clock.Advance(10*time.Minute + time.Second)
		if r := recoverCode(attacker, "alice", alice.codes[0]); r.StatusCode != http.StatusOK {
			t.Fatalf("after the window: %d %s", r.StatusCode, r.Body)
		}
		finishRecovery(t, env, attacker, alice, auth.MethodRecoveryCode)
	})
}

// TestRecoveryCodeRace is HOSTILE PUB-31b: one code sent by 20 browsers at once signs in once.
func TestRecoveryCodeRace(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice := join(t, env, "alice")
	var wg sync.WaitGroup
	start := make(chan struct{})
	codes := make([]int, 20)
	for i := range codes {
		b := from(env, fmt.Sprintf("192.0.2.%d", i+1))
		wg.Go(func() {
			<-start
			codes[i] = recoverCode(b, "alice", alice.codes[5]).StatusCode
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized, http.StatusTooManyRequests:
		default:
			t.Fatalf("unexpected status %d", c)
		}
	}
	if ok != 1 || env.Count("sessions", "method = 'recovery_code'") != 1 {
		t.Fatalf("%d successes, %d recovery sessions; want exactly one", ok, env.Count("sessions", "method = 'recovery_code'"))
	}
}

// TestRecoverySessionExpires: a recovery session that is not used to enrol soon is worthless.
func TestRecoverySessionExpires(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice := join(t, env, "alice")
	b := from(env, "203.0.113.30")
	if r := recoverCode(b, "alice", alice.codes[0]); r.StatusCode != http.StatusOK {
		t.Fatalf("recover: %d", r.StatusCode)
	}
	env.Clock.Advance(auth.RecoverySessionTTL + time.Second)
	if _, r := b.BeginRegister(""); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("register/begin with an expired recovery session: %d %s", r.StatusCode, r.Body)
	}
}

// mailbox is the test's end of the Mailer interface: what cmd/latchkey's SMTP mailer would hand
// to the relay (cmd/latchkey tests that mailer against a real SMTP server). When hold is set, a
// send waits for it, which shows that the HTTP answer does not wait for the mail.
type mailbox struct {
	ch   chan mail
	hold chan struct{}
}

type mail struct{ to, subject, body string }

func (m *mailbox) Send(ctx context.Context, to, subject, body string) error {
	if m.hold != nil {
		select {
		case <-m.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.ch <- mail{to, subject, body}
	return nil
}

func (m *mailbox) next(t *testing.T) mail {
	t.Helper()
	select {
	case msg := <-m.ch:
		return msg
	case <-time.After(10 * time.Second):
		t.Fatal("no mail arrived")
		return mail{}
	}
}

var linkRE = regexp.MustCompile(`https?://\S+/\.latchkey/recover\?token=[A-Za-z0-9_%-]+`)

// linkPath returns the path and query of the recovery link in a mail.
func linkPath(t *testing.T, msg mail) string {
	t.Helper()
	link := linkRE.FindString(msg.body)
	if link == "" {
		t.Fatalf("no recovery link in the mail:\n%s", msg.body)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.RequestURI()
}

// openLink follows a recovery link as a person does: the GET shows a confirmation page (and
// writes nothing, so that mail scanners cannot use the link up), whose button POSTs the token.
// It returns the GET's answer when that refused, else the POST's.
func openLink(t *testing.T, b *lktest.Client, link string) *lktest.Response {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	token := u.Query().Get("token")
	page := b.Get(link)
	if page.StatusCode != http.StatusOK {
		return page
	}
	if !strings.Contains(string(page.Body), `data-token="`+token+`"`) || !strings.Contains(string(page.Body), `id="recover-link-continue"`) {
		t.Fatalf("the link's confirmation page holds no button with the token:\n%s", page.Body)
	}
	return b.PostJSON("/.latchkey/api/recover/link", map[string]string{"token": token})
}

func requestLink(t *testing.T, b *lktest.Client, user string) *lktest.Response {
	t.Helper()
	r := b.PostJSON("/.latchkey/api/recover/email", map[string]string{"user": user})
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("recover/email for %q: %d %s", user, r.StatusCode, r.Body)
	}
	return r
}

func TestMagicLink(t *testing.T) {
	box := &mailbox{ch: make(chan mail, 16)}
	env := accountEnv(t, lktest.Config{Mailer: box})
	alice := join(t, env, "alice")
	join(t, env, "bob")
	ctx := context.Background()

	page := env.Client().Get("/.latchkey/recover")
	if !strings.Contains(string(page.Body), `id="email-form"`) {
		t.Fatal("the recover page offers no e-mail link although a mailer is set")
	}

	t.Run("the link leads to a new passkey, once", func(t *testing.T) {
		requestLink(t, from(env, "203.0.113.40"), "alice")
		msg := box.next(t)
		if msg.to != "alice@example.com" || !strings.Contains(msg.subject, "Recover") || !strings.Contains(msg.body, "203.0.113.40") {
			t.Fatalf("mail: %+v", msg)
		}
		link := linkPath(t, msg)
		token := strings.TrimPrefix(link, "/.latchkey/recover?token=")
		if strings.Contains(env.Tables(), token) {
			t.Fatal("the link token is stored in plaintext")
		}
		b := from(env, "203.0.113.41")
		r := openLink(t, b, link)
		var opened struct {
			Redirect string `json:"redirect"`
		}
		if r.StatusCode != http.StatusOK || r.JSON(&opened) != nil || !strings.HasSuffix(opened.Redirect, "/.latchkey/enroll") || b.Session() == "" {
			t.Fatalf("open link: %d %s", r.StatusCode, r.Body)
		}
		if r.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatal("the link's answer does not set Referrer-Policy: no-referrer")
		}
		if strings.Contains(env.Logs.String(), token) {
			t.Fatal("the link token was logged")
		}
		if r := b.PostJSON("/.latchkey/api/recovery-codes", map[string]string{}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("a magic-link session made recovery codes: %d", r.StatusCode)
		}

		before := env.Tables()
		replay := from(env, "203.0.113.42")
		if r := replay.Get(link); r.StatusCode != http.StatusForbidden || replay.Session() != "" {
			t.Fatalf("replayed link: %d", r.StatusCode)
		}
		unchanged(t, env, before, "a replayed link")

		finishRecovery(t, env, b, alice, auth.MethodMagicLink)
	})

	t.Run("an expired link is refused", func(t *testing.T) {
		requestLink(t, env.Client(), "alice")
		link := linkPath(t, box.next(t))
		env.Clock.Advance(auth.MagicLinkTTL + time.Second)
		before := env.Tables()
		if r := env.Client().Get(link); r.StatusCode != http.StatusForbidden {
			t.Fatalf("expired link: %d", r.StatusCode)
		}
		unchanged(t, env, before, "an expired link")
	})

	t.Run("a link to an address the account no longer has is refused", func(t *testing.T) {
		requestLink(t, env.Client(), "alice")
		link := linkPath(t, box.next(t))
		u := alice.user
		u.Email = "alice@new.example.com"
		if err := env.Store.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		before := env.Tables()
		if r := env.Client().Get(link); r.StatusCode != http.StatusForbidden || !strings.Contains(string(r.Body), "no longer on the account") {
			t.Fatalf("link after an e-mail change: %d", r.StatusCode)
		}
		unchanged(t, env, before, "a link to an old address")
	})

	t.Run("a new link replaces the previous one", func(t *testing.T) {
		env.Clock.Advance(time.Hour) // refill the account's mail bucket (three per ten minutes)
		requestLink(t, env.Client(), "alice")
		first := linkPath(t, box.next(t))
		requestLink(t, env.Client(), "alice")
		second := linkPath(t, box.next(t))
		if r := env.Client().Get(first); r.StatusCode != http.StatusForbidden {
			t.Fatalf("superseded link: %d", r.StatusCode)
		}
		if r := openLink(t, env.Client(), second); r.StatusCode != http.StatusOK {
			t.Fatalf("latest link: %d", r.StatusCode)
		}
	})

	t.Run("forged and garbage tokens", func(t *testing.T) {
		before := env.Tables()
		for _, tok := range []string{"", "x", strings.Repeat("A", 43), "../../etc"} {
			if r := env.Client().Get("/.latchkey/recover?token=" + url.QueryEscape(tok)); r.StatusCode != http.StatusForbidden {
				t.Fatalf("token %q: %d", tok, r.StatusCode)
			}
		}
		unchanged(t, env, before, "a garbage link")
		// An enrolment token is no recovery link, nor the other way round (PUB-27).
		_, enrolToken := env.AddUser("carol")
		before = env.Tables()
		if r := env.Client().Get("/.latchkey/recover?token=" + enrolToken); r.StatusCode != http.StatusForbidden {
			t.Fatalf("enrolment token as recovery link: %d", r.StatusCode)
		}
		unchanged(t, env, before, "a forged link")
	})
}

// TestMagicLinkNoOracle is HOSTILE PUB-29: the answer is the same for an account with an address,
// an unknown account, an account without an address and a disabled account, and it does not wait
// for the mail to go out.
func TestMagicLinkNoOracle(t *testing.T) {
	box := &mailbox{ch: make(chan mail, 16), hold: make(chan struct{})}
	env := accountEnv(t, lktest.Config{Mailer: box})
	join(t, env, "alice")
	noMail := join(t, env, "nomail")
	u := noMail.user
	u.Email = ""
	if err := env.Store.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	off := join(t, env, "off")
	if err := env.Store.SetUserDisabled(context.Background(), off.user.ID, true); err != nil {
		t.Fatal(err)
	}
	env.Refresh()

	type answer struct {
		status int
		body   string
		header string
	}
	answerOf := func(r *lktest.Response) answer {
		h := r.Header.Clone()
		h.Del("Date")
		// Every answer carries its own request ID; it tells nothing about the account.
		if !validReqID(h.Get("X-Request-Id")) {
			t.Fatalf("no request ID on the answer: %v", h)
		}
		h.Del("X-Request-Id")
		return answer{r.StatusCode, string(r.Body), fmt.Sprint(h)}
	}
	var want answer
	for i, name := range []string{"mallory", "nomail", "off", "alice", strings.Repeat("x", 500)} {
		// Alice's mail is held back by the relay until after her answer arrived.
		got := answerOf(requestLink(t, from(env, fmt.Sprintf("203.0.113.%d", 70+i)), name))
		if i == 0 {
			want = got
		} else if got != want {
			t.Fatalf("answer for %q differs:\n%+v\nwant\n%+v", name, got, want)
		}
	}
	close(box.hold)
	if msg := box.next(t); msg.to != "alice@example.com" {
		t.Fatalf("mail went to %q", msg.to)
	}
	select {
	case msg := <-box.ch:
		t.Fatalf("a second mail went out, to %q", msg.to)
	default:
	}
	if n := env.Count("invites", "purpose = 'recover'"); n != 1 {
		t.Fatalf("%d recovery links made, want 1 (alice's)", n)
	}

	t.Run("one account gets a few mails, then silence with the same answer", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			requestLink(t, from(env, fmt.Sprintf("203.0.113.%d", 80+i)), "alice")
		}
		// Alice had one mail already: two more fit in the account's bucket of three.
		box.next(t)
		box.next(t)
		if n := env.Count("invites", "purpose = 'recover'"); n != 3 {
			t.Fatalf("%d links made, want 3", n)
		}
	})
	t.Run("one address is throttled with 429, whatever the account", func(t *testing.T) {
		b := from(env, "198.51.100.9")
		n := 0
		for ; n < 20; n++ {
			if r := b.PostJSON("/.latchkey/api/recover/email", map[string]string{"user": fmt.Sprintf("u%d", n)}); r.StatusCode == http.StatusTooManyRequests {
				if r.Header.Get("Retry-After") == "" {
					t.Fatal("429 without Retry-After")
				}
				break
			}
		}
		if n != 5 {
			t.Fatalf("throttled after %d requests, want 5", n)
		}
	})
}

// TestMagicLinkWithoutMailer: with no SMTP configured the endpoint still answers 202 and makes nothing.
func TestMagicLinkWithoutMailer(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	join(t, env, "alice")
	before := env.Tables()
	requestLink(t, env.Client(), "alice")
	unchanged(t, env, before, "a link request without a mailer")
}

// validReqID: the request log's IDs are a per-process prefix, a dash and a counter.
func validReqID(id string) bool { return len(id) > 2 && strings.Contains(id, "-") }
