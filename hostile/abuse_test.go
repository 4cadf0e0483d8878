package hostile

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/store"
)

// beginFrom sends login/begin straight to the handler, through the trusted loopback peer, for
// the client address xff.
func beginFrom(env *lktest.Env, xff string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "http://auth.example.com/.latchkey/api/login/begin", strings.NewReader("{}"))
	req.RemoteAddr = "127.0.0.1:50000"
	req.Header.Set("Origin", origin)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", xff)
	w := httptest.NewRecorder()
	env.Handler.ServeHTTP(w, req)
	return w
}

// TestRateLimitsAndBoundedState is PUB-30.
func TestRateLimitsAndBoundedState(t *testing.T) {
	t.Run("one client", func(t *testing.T) {
		env := newEnv(t)
		alice := enrol(t, env, "alice")
		ok, limited := 0, 0
		for range 10000 {
			w := beginFrom(env, "198.18.0.1")
			switch w.Code {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				limited++
				if w.Header().Get("Retry-After") == "" {
					t.Fatal("429 without Retry-After")
				}
			default:
				t.Fatalf("login/begin: %d %s", w.Code, w.Body)
			}
		}
		if ok > 100 || limited < 9900 {
			t.Errorf("10000 begins from one client: %d accepted, %d limited", ok, limited)
		}
		if n := env.Count("ceremonies", ""); n > 100 {
			t.Errorf("one client left %d ceremonies", n)
		}
		// Another address is not locked out.
		if got := browser(env).Login(alice.pk, ""); got != accountPage {
			t.Errorf("legit login after the flood: %q", got)
		}
		alive(t, env)
	})
	t.Run("1000 failed finishes", func(t *testing.T) {
		env := newEnv(t)
		alice := enrol(t, env, "alice")
		limited := 0
		for range 1000 {
			b := browser(env)
			b.Header.Set("X-Forwarded-For", "198.18.0.2")
			r := b.PostJSON("/.latchkey/api/login/begin", map[string]any{})
			if r.StatusCode == http.StatusTooManyRequests {
				limited++
				continue
			}
			o, _ := lktest.ParseOptions(r.Body)
			if r := b.FinishLogin(alice.pk.Assert(o, origin, lktest.Ceremony{BadSignature: true}), ""); r.StatusCode != http.StatusBadRequest {
				t.Fatalf("bad finish: %d", r.StatusCode)
			}
		}
		if limited < 900 {
			t.Errorf("1000 failing attempts from one client: only %d limited", limited)
		}
		if got := browser(env).Login(alice.pk, ""); got != accountPage {
			t.Errorf("legit login after the failures: %q", got)
		}
	})
	t.Run("10000 client addresses", func(t *testing.T) {
		env := newEnv(t)
		alice := enrol(t, env, "alice")
		for i := range 10000 {
			w := beginFrom(env, fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
			if w.Code != http.StatusOK && w.Code != http.StatusTooManyRequests && w.Code != http.StatusServiceUnavailable {
				t.Fatalf("login/begin %d: %d %s", i, w.Code, w.Body)
			}
		}
		if n := env.Count("ceremonies", ""); n > 10000 {
			t.Errorf("the ceremony table grew to %d rows", n)
		}
		// A person on another address must still get in: the flood may not lock everyone out.
		b := browser(env)
		r := b.PostJSON("/.latchkey/api/login/begin", map[string]any{})
		if r.StatusCode != http.StatusOK {
			t.Fatalf("legit login/begin after a flood from 10000 addresses: %d %s", r.StatusCode, r.Body)
		}
		o, _ := lktest.ParseOptions(r.Body)
		if r := b.FinishLogin(alice.pk.Assert(o, origin, lktest.Ceremony{}), ""); r.StatusCode != http.StatusOK {
			t.Fatalf("legit login/finish after the flood: %d %s", r.StatusCode, r.Body)
		}
		alive(t, env)
	})
}

// post sends one request with a plain client (safe to call from any goroutine).
func post(url, host string, body []byte, cookies map[string]string, xff string) (int, []*http.Cookie, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Host = host
	req.Header.Set("Origin", origin)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", xff)
	for k, v := range cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Cookies(), nil
}

// TestConcurrency is PUB-31; run it with -race.
func TestConcurrency(t *testing.T) {
	env := newEnv(t)
	alice := enrol(t, env, "alice")
	bob := enrol(t, env, "bob")
	finishURL := env.Server.URL + "/.latchkey/api/login/finish"

	t.Run("(a) two finishes racing on one assertion", func(t *testing.T) {
		for i := range 100 {
			b := browser(env)
			o := b.BeginLogin()
			body := alice.pk.Assert(o, origin, lktest.Ceremony{})
			before := signCount(t, env, alice.pk.ID)
			var (
				wg      sync.WaitGroup
				barrier = make(chan struct{})
				status  [2]int
				cookies [2][]*http.Cookie
				errs    [2]error
			)
			for g := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-barrier
					status[g], cookies[g], errs[g] = post(finishURL, "auth.example.com", body, b.Cookies, b.Header.Get("X-Forwarded-For"))
				}()
			}
			close(barrier)
			wg.Wait()
			sessions := 0
			for g := range 2 {
				if errs[g] != nil {
					t.Fatal(errs[g])
				}
				for _, c := range cookies[g] {
					if c.Name == "latchkey_session" && c.Value != "" {
						sessions++
					}
				}
			}
			oks := 0
			for _, s := range status {
				if s == http.StatusOK {
					oks++
				} else if s != http.StatusBadRequest {
					t.Errorf("round %d: a racing finish got %d", i, s)
				}
			}
			if oks != 1 || sessions != 1 {
				t.Fatalf("round %d: %d answers 200 and %d session cookies (statuses %v), want exactly one", i, oks, sessions, status)
			}
			if after := signCount(t, env, alice.pk.ID); after != before+1 {
				t.Fatalf("round %d: sign_count %d → %d, want one step", i, before, after)
			}
		}
	})
	t.Run("(b) one recovery code from 20 goroutines", func(t *testing.T) {
		code := alice.codes[0]
		body, _ := json.Marshal(map[string]string{"user": "alice", "code": code})
		var wg sync.WaitGroup
		barrier := make(chan struct{})
		var status [20]int
		for g := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-barrier
				status[g], _, _ = post(env.Server.URL+"/.latchkey/api/recover", "auth.example.com", body, nil, nextAddr())
			}()
		}
		close(barrier)
		wg.Wait()
		oks := 0
		for _, s := range status {
			if s == http.StatusNotImplemented {
				t.Skip("POST /.latchkey/api/recover is not implemented yet (501)")
			}
			if s == http.StatusOK {
				oks++
			}
		}
		if oks != 1 {
			t.Errorf("one recovery code accepted %d times (statuses %v)", oks, status)
		}
	})
	t.Run("(c) two users at the same moment", func(t *testing.T) {
		pairs := 1000
		if testing.Short() {
			pairs = 100
		}
		for i := range pairs {
			type who struct {
				m       *member
				b       *lktest.Client
				body    []byte
				cookies []*http.Cookie
				status  int
				err     error
			}
			ws := []*who{{m: alice, b: browser(env)}, {m: bob, b: browser(env)}}
			for _, w := range ws {
				o := w.b.BeginLogin()
				w.body = w.m.pk.Assert(o, origin, lktest.Ceremony{})
			}
			var wg sync.WaitGroup
			barrier := make(chan struct{})
			for _, w := range ws {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-barrier
					w.status, w.cookies, w.err = post(finishURL, "auth.example.com", w.body, w.b.Cookies, w.b.Header.Get("X-Forwarded-For"))
				}()
			}
			close(barrier)
			wg.Wait()
			for _, w := range ws {
				if w.err != nil || w.status != http.StatusOK {
					t.Fatalf("pair %d: %s: %d %v", i, w.m.user.Name, w.status, w.err)
				}
				var cookie string
				for _, c := range w.cookies {
					if c.Name == "latchkey_session" {
						cookie = c.Value
					}
				}
				if r, ok := forwardAllowed(t, env, cookie); !ok || r.Header.Get("Remote-User") != w.m.user.Name {
					t.Fatalf("pair %d: %s's browser is %q", i, w.m.user.Name, r.Header.Get("Remote-User"))
				}
			}
		}
	})
}

// TestSecretsNeverLogged is PUB-32: a full enrol, login, token, recovery and logout run at
// debug level; no secret appears in the log or the audit table.
func TestSecretsNeverLogged(t *testing.T) {
	hashKey, blockKey := lktest.RandomKey(32), lktest.RandomKey(32)
	env := newEnv(t, func(c *lktest.Config) {
		c.LogLevel = slog.LevelDebug
		c.HashKey, c.BlockKey = hashKey, blockKey
	})
	var secrets []string
	add := func(what string, values ...string) {
		for _, v := range values {
			if len(v) >= 8 {
				secrets = append(secrets, what+"\x00"+v)
			}
		}
	}
	for _, k := range [][]byte{hashKey, blockKey} {
		add("key", base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k), hex.EncodeToString(k), string(k))
	}

	_, token := env.AddUser("alice")
	add("enrolment token", token)
	// The enrolment page with the token in its URL, then the ceremony.
	b := browser(env)
	b.Get("/.latchkey/enroll?token=" + token)
	o, r := b.BeginRegister(token)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("register/begin: %d", r.StatusCode)
	}
	add("ceremony cookie", b.Cookies["__Host-latchkey_ceremony"])
	add("challenge", o.PublicKey.Challenge)
	pk := lktest.NewPasskey()
	att := pk.Attest(o, origin, lktest.Ceremony{})
	addFields := func(body []byte) {
		var m struct {
			Response map[string]string `json:"response"`
		}
		json.Unmarshal(body, &m)
		for f, v := range m.Response {
			if f != "transports" {
				add("raw "+f, v)
			}
		}
	}
	addFields(att)
	r = b.PostJSON("/.latchkey/api/register/finish", att)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("register/finish: %d %s", r.StatusCode, r.Body)
	}
	var reg struct {
		Codes []string `json:"recovery_codes"`
	}
	r.JSON(&reg)
	for _, c := range reg.Codes {
		add("recovery code", c, strings.ReplaceAll(c, "-", ""))
	}
	add("session cookie", b.Session())

	// A failed and a successful login.
	b2 := browser(env)
	o = b2.BeginLogin()
	add("challenge", o.PublicKey.Challenge)
	bad := pk.Assert(o, origin, lktest.Ceremony{BadSignature: true})
	addFields(bad)
	b2.FinishLogin(bad, "")
	o = b2.BeginLogin()
	good := pk.Assert(o, origin, lktest.Ceremony{})
	addFields(good)
	if r := b2.FinishLogin(good, "https://grafana.example.com/?token=secret-in-rd-"+token); r.StatusCode != http.StatusOK {
		t.Fatalf("login/finish: %d %s", r.StatusCode, r.Body)
	}
	add("session cookie", b2.Session())

	// An API token, used once.
	r = b2.PostJSON("/.latchkey/api/tokens", map[string]any{"name": "ci", "hosts": []string{"grafana.example.com"}})
	var tok struct {
		Token string `json:"token"`
	}
	if err := r.JSON(&tok); err != nil || tok.Token == "" {
		t.Fatalf("API token: %d %s", r.StatusCode, r.Body)
	}
	add("API token", tok.Token)
	b2.Forward("grafana.example.com", "/api?token="+token, http.Header{"Authorization": {"Bearer " + tok.Token}})
	b2.Forward("grafana.example.com", "/", http.Header{"Authorization": {"Basic YWxpY2U6aHVudGVyMg=="}})
	add("Authorization", "YWxpY2U6aHVudGVyMg==")

	// Recovery with a code, then a wrong code.
	rb := browser(env)
	if r := rb.PostJSON("/.latchkey/api/recover", map[string]string{"user": "alice", "code": reg.Codes[0]}); r.StatusCode != http.StatusOK {
		t.Fatalf("recover: %d %s", r.StatusCode, r.Body)
	}
	rb.PostJSON("/.latchkey/api/recover", map[string]string{"user": "alice", "code": "WRONG-CODE-0000-0000"})
	add("wrong code", "WRONG-CODE-0000-0000")
	add("session cookie", rb.Session())
	b2.PostJSON("/.latchkey/logout", map[string]string{})

	var audit strings.Builder
	rows, err := env.Store.DB().Query("SELECT * FROM audit")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		rows.Scan(ptrs...)
		fmt.Fprintln(&audit, vals...)
	}
	rows.Close()

	logs := env.Logs.String()
	if !strings.Contains(logs, "level=DEBUG") {
		t.Fatal("control: nothing was logged at debug level")
	}
	for _, s := range secrets {
		what, v, _ := strings.Cut(s, "\x00")
		if strings.Contains(logs, v) {
			t.Errorf("the log holds a %s", what)
		}
		if strings.Contains(audit.String(), v) {
			t.Errorf("the audit table holds a %s", what)
		}
	}
}

// TestDatabaseFileModes is the file half of PUB-32: the SQLite file and its -wal and -shm
// companions are 0600 even under umask 000.
func TestDatabaseFileModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "latchkey.db")
	st, err := store.Open(context.Background(), store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateUser(context.Background(), store.User{ID: "u1", Name: "u1"}); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		fi, err := os.Stat(path + suffix)
		if err != nil {
			t.Errorf("%s: %v", suffix, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("database file%s has mode %o, want 600", suffix, fi.Mode().Perm())
		}
	}
}
