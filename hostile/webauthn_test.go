package hostile

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

func flags(f byte) *byte       { return &f }
func counter(n uint32) *uint32 { return &n }

// signCount reads a credential's stored counter.
func signCount(t testing.TB, env *lktest.Env, id []byte) uint32 {
	t.Helper()
	c, err := env.Store.Credential(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.SignCount
}

// loginAttempt begins a login in a fresh browser and finishes it with the assertion that build
// makes from the options.
func loginAttempt(env *lktest.Env, build func(lktest.Options) []byte) func() *lktest.Response {
	b := browser(env)
	o := b.BeginLogin()
	body := build(o)
	return func() *lktest.Response { return b.FinishLogin(body, "") }
}

// registerAttempt begins an enrolment for a new user and finishes it with what build makes.
func registerAttempt(t testing.TB, env *lktest.Env, name string, build func(lktest.Options) []byte) func() *lktest.Response {
	t.Helper()
	_, token := env.AddUser(name + strconv.FormatInt(addrs.Add(1), 10))
	b := browser(env)
	o, r := b.BeginRegister(token)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("register/begin: %d %s", r.StatusCode, r.Body)
	}
	body := build(o)
	return func() *lktest.Response { return b.PostJSON("/.latchkey/api/register/finish", body) }
}

// TestReplayedAssertion is PUB-18.
func TestReplayedAssertion(t *testing.T) {
	env := newEnv(t)
	alice := enrol(t, env, "alice")
	b := browser(env)
	o := b.BeginLogin()
	ceremony := b.Cookies["__Host-latchkey_ceremony"]
	body := alice.pk.Assert(o, origin, lktest.Ceremony{})
	if r := b.FinishLogin(body, ""); r.StatusCode != http.StatusOK {
		t.Fatalf("first use: %d %s", r.StatusCode, r.Body)
	}
	count := signCount(t, env, alice.pk.ID)
	t.Run("same browser, same ceremony cookie", func(t *testing.T) {
		again := browser(env)
		again.Cookies["__Host-latchkey_ceremony"] = ceremony
		reject(t, env, http.StatusBadRequest, func() *lktest.Response { return again.FinishLogin(body, "") })
	})
	t.Run("same browser, new ceremony", func(t *testing.T) {
		b.BeginLogin()
		reject(t, env, http.StatusBadRequest, func() *lktest.Response { return b.FinishLogin(body, "") })
	})
	t.Run("another browser with its own ceremony", func(t *testing.T) {
		other := browser(env)
		other.BeginLogin()
		reject(t, env, http.StatusBadRequest, func() *lktest.Response { return other.FinishLogin(body, "") })
	})
	if got := signCount(t, env, alice.pk.ID); got != count {
		t.Errorf("sign_count moved from %d to %d", count, got)
	}
}

// TestAssertionForAnotherRelyingParty is PUB-19.
func TestAssertionForAnotherRelyingParty(t *testing.T) {
	env := newEnv(t)
	alice := enrol(t, env, "alice")
	cases := map[string]lktest.Ceremony{
		"origin evil.com":                        {Origin: "https://evil.com"},
		"origin over http":                       {Origin: "http://auth.example.com"},
		"origin with another port":               {Origin: "https://auth.example.com:8443"},
		"origin with a suffix":                   {Origin: "https://auth.example.com.evil.com"},
		"origin of a sibling under the RP ID":    {Origin: "https://grafana.example.com"},
		"origin of the RP ID itself":             {Origin: "https://example.com"},
		"origin null":                            {Origin: "null"},
		"crossOrigin true":                       {CrossOrigin: true},
		"crossOrigin true with topOrigin evil":   {CrossOrigin: true, TopOrigin: "https://evil.com"},
		"topOrigin evil.com":                     {TopOrigin: "https://evil.com"},
		"rpIdHash of evil.com":                   {RPID: "evil.com"},
		"rpIdHash of example.org":                {RPID: "example.org"},
		"rpIdHash of the portal host, not rp_id": {RPID: "auth.example.com"},
		"bad signature":                          {BadSignature: true},
		"challenge of another encoding":          {Challenge: "AAAA"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			reject(t, env, http.StatusBadRequest, loginAttempt(env, func(o lktest.Options) []byte { return alice.pk.Assert(o, origin, c) }))
		})
	}
	t.Run("control/honest assertion", func(t *testing.T) {
		if r := loginAttempt(env, func(o lktest.Options) []byte { return alice.pk.Assert(o, origin, lktest.Ceremony{}) })(); r.StatusCode != http.StatusOK {
			t.Fatalf("honest login: %d %s", r.StatusCode, r.Body)
		}
	})
}

// TestChallengeFromAnotherBrowser is PUB-20.
func TestChallengeFromAnotherBrowser(t *testing.T) {
	env := newEnv(t)
	alice := enrol(t, env, "alice")
	a := browser(env)
	oa := a.BeginLogin()
	t.Run("browser B with its own ceremony", func(t *testing.T) {
		b := browser(env)
		b.BeginLogin()
		reject(t, env, http.StatusBadRequest, func() *lktest.Response { return b.FinishLogin(alice.pk.Assert(oa, origin, lktest.Ceremony{}), "") })
	})
	t.Run("browser B without a ceremony cookie", func(t *testing.T) {
		b := browser(env)
		reject(t, env, http.StatusBadRequest, func() *lktest.Response { return b.FinishLogin(alice.pk.Assert(oa, origin, lktest.Ceremony{}), "") })
	})
	t.Run("a challenge the server never issued", func(t *testing.T) {
		reject(t, env, http.StatusBadRequest, loginAttempt(env, func(o lktest.Options) []byte {
			return alice.pk.Assert(o, origin, lktest.Ceremony{Challenge: base64.RawURLEncoding.EncodeToString(lktest.RandomKey(32))})
		}))
	})
	t.Run("a ceremony cookie whose row is gone", func(t *testing.T) {
		b := browser(env)
		o := b.BeginLogin()
		if _, err := env.Store.DB().Exec("DELETE FROM ceremonies"); err != nil {
			t.Fatal(err)
		}
		reject(t, env, http.StatusBadRequest, func() *lktest.Response { return b.FinishLogin(alice.pk.Assert(o, origin, lktest.Ceremony{}), "") })
		oa = a.BeginLogin() // A's row went too; A starts again
	})
	t.Run("A's challenge is still A's", func(t *testing.T) {
		if r := a.FinishLogin(alice.pk.Assert(oa, origin, lktest.Ceremony{}), ""); r.StatusCode != http.StatusOK {
			t.Fatalf("A finishing its own ceremony: %d %s", r.StatusCode, r.Body)
		}
	})
}

// TestExpiredChallenge is PUB-21.
func TestExpiredChallenge(t *testing.T) {
	env := newEnv(t)
	alice := enrol(t, env, "alice")
	for _, kind := range []string{"login", "register"} {
		t.Run(kind, func(t *testing.T) {
			var attempt func() *lktest.Response
			if kind == "login" {
				attempt = loginAttempt(env, func(o lktest.Options) []byte { return alice.pk.Assert(o, origin, lktest.Ceremony{}) })
			} else {
				pk := lktest.NewPasskey()
				attempt = registerAttempt(t, env, "late", func(o lktest.Options) []byte { return pk.Attest(o, origin, lktest.Ceremony{}) })
			}
			env.Clock.Advance(5*time.Minute + time.Second)
			reject(t, env, http.StatusBadRequest, attempt)
			if n := env.Count("ceremonies", ""); n != 0 {
				t.Errorf("%d ceremony rows left after the expired finish", n)
			}
		})
	}
}

// TestWrongCeremonyTypeAndFlags is PUB-22.
func TestWrongCeremonyTypeAndFlags(t *testing.T) {
	env := newEnv(t)
	alice := enrol(t, env, "alice")
	synced := lktest.NewPasskey()
	synced.Flags = lktest.FlagUP | lktest.FlagUV | lktest.FlagBE | lktest.FlagBS
	_, token := env.AddUser("bob")
	browser(env).Enrol(synced, token)

	login := map[string]struct {
		pk *lktest.Passkey
		c  lktest.Ceremony
	}{
		"webauthn.create to login/finish":     {alice.pk, lktest.Ceremony{Type: "webauthn.create"}},
		"type payment.get":                    {alice.pk, lktest.Ceremony{Type: "payment.get"}},
		"UP=1 UV=0":                           {alice.pk, lktest.Ceremony{Flags: flags(lktest.FlagUP)}},
		"UP=0 UV=0":                           {alice.pk, lktest.Ceremony{Flags: flags(0)}},
		"UP=0 UV=1":                           {alice.pk, lktest.Ceremony{Flags: flags(lktest.FlagUV)}},
		"BS=1 with BE=0":                      {alice.pk, lktest.Ceremony{Flags: flags(lktest.FlagUP | lktest.FlagUV | lktest.FlagBS)}},
		"BE=0 for a credential stored BE=1":   {synced, lktest.Ceremony{Flags: flags(lktest.FlagUP | lktest.FlagUV)}},
		"AT set on an assertion without data": {alice.pk, lktest.Ceremony{Flags: flags(lktest.FlagUP | lktest.FlagUV | lktest.FlagAT)}},
	}
	for name, c := range login {
		t.Run("login/"+name, func(t *testing.T) {
			reject(t, env, http.StatusBadRequest, loginAttempt(env, func(o lktest.Options) []byte { return c.pk.Assert(o, origin, c.c) }))
		})
	}
	register := map[string]lktest.Ceremony{
		"webauthn.get to register/finish": {Type: "webauthn.get"},
		"UV=0 at enrolment":               {Flags: flags(lktest.FlagUP)},
		"UP=0 UV=0 at enrolment":          {Flags: flags(0)},
		"UP=0 UV=1 at enrolment":          {Flags: flags(lktest.FlagUV)},
		"BS=1 with BE=0 at enrolment":     {Flags: flags(lktest.FlagUP | lktest.FlagUV | lktest.FlagBS)},
		"origin evil.com":                 {Origin: "https://evil.com"},
		"rpIdHash of evil.com":            {RPID: "evil.com"},
	}
	i := 0
	for name, c := range register {
		i++
		t.Run("register/"+name, func(t *testing.T) {
			pk := lktest.NewPasskey()
			attempt := registerAttempt(t, env, "reg"+string(rune('a'+i)), func(o lktest.Options) []byte { return pk.Attest(o, origin, c) })
			reject(t, env, http.StatusBadRequest, attempt)
		})
	}
}

// TestSignCounterRegression is PUB-23.
func TestSignCounterRegression(t *testing.T) {
	env := newEnv(t)
	alice := enrol(t, env, "alice")
	alice.pk.Counter = 9
	browser(env).Login(alice.pk, "") // counter 10
	if got := signCount(t, env, alice.pk.ID); got != 10 {
		t.Fatalf("stored sign_count = %d, want 10", got)
	}
	for _, n := range []uint32{5, 10, 0} {
		t.Run("counter "+string(rune('0'+n%10)), func(t *testing.T) {
			audits := env.Count("audit", "event = 'possible_cloned_authenticator'")
			reject(t, env, http.StatusBadRequest, loginAttempt(env, func(o lktest.Options) []byte {
				return alice.pk.Assert(o, origin, lktest.Ceremony{Counter: counter(n)})
			}))
			if got := signCount(t, env, alice.pk.ID); got != 10 {
				t.Errorf("sign_count = %d, want 10", got)
			}
			if env.Count("audit", "event = 'possible_cloned_authenticator' AND user_id = ?", alice.user.ID) != audits+1 {
				t.Error("no possible_cloned_authenticator audit event for the user")
			}
		})
	}
}

// TestUnknownRemovedDisabled is PUB-24 as revised in CASES.md "Login answers" (LOGIN-01): a
// credential ID the store does not hold (never registered, or removed) gets its own answer,
// identical for both, so that the page can tell the password manager to drop the passkey; a
// passkey the store holds but that may not sign in (disabled user, a user handle of nobody, a bad
// signature) gets the one generic answer. Neither answer says anything about a user, and the
// audit row says the unknown case in words, not in the library's error text.
func TestUnknownRemovedDisabled(t *testing.T) {
	env := newEnv(t)
	alice := enrol(t, env, "alice")
	removed := enrol(t, env, "removed")
	if err := env.Store.DeleteCredential(context.Background(), removed.user.ID, removed.pk.ID); err != nil {
		t.Fatal(err)
	}
	disabled := enrol(t, env, "disabled")
	if err := env.Store.SetUserDisabled(context.Background(), disabled.user.ID, true); err != nil {
		t.Fatal(err)
	}
	env.Refresh()
	unknown := lktest.NewPasskey()
	unknown.UserHandle = alice.pk.UserHandle
	ghost := lktest.NewPasskey()
	ghost.ID = alice.pk.ID // a known credential ID with a user handle of nobody
	ghost.Key = alice.pk.Key
	ghost.Counter = 1000
	ghost.UserHandle = lktest.RandomKey(16)
	forged := lktest.NewPasskey() // alice's credential ID and handle, signed with another key
	forged.ID = alice.pk.ID
	forged.UserHandle = alice.pk.UserHandle
	forged.Counter = 1000

	answers := map[string]string{}
	for _, c := range []struct {
		name string
		pk   *lktest.Passkey
	}{{"unknown credential", unknown}, {"removed passkey", removed.pk}, {"disabled user", disabled.pk},
		{"user handle of nobody", ghost}, {"bad signature", forged}} {
		t.Run(c.name, func(t *testing.T) {
			r := reject(t, env, http.StatusBadRequest, loginAttempt(env, func(o lktest.Options) []byte { return c.pk.Assert(o, origin, lktest.Ceremony{}) }))
			answers[c.name] = string(r.Body)
		})
	}
	same := func(group ...string) {
		for _, n := range group[1:] {
			if answers[n] != answers[group[0]] {
				t.Errorf("%s and %s answer differently, an oracle: %q vs %q", group[0], n, answers[group[0]], answers[n])
			}
		}
	}
	same("unknown credential", "removed passkey")
	same("disabled user", "user handle of nobody", "bad signature")

	var unknownAns struct {
		Error             string `json:"error"`
		UnknownCredential bool   `json:"unknown_credential"`
	}
	if err := json.Unmarshal([]byte(answers["unknown credential"]), &unknownAns); err != nil || !unknownAns.UnknownCredential ||
		!strings.Contains(unknownAns.Error, "was removed from your account, or was never registered here") {
		t.Errorf("unknown credential answer %q, want unknown_credential and the removed-passkey words", answers["unknown credential"])
	}
	if strings.Contains(answers["disabled user"], "unknown_credential") || answers["disabled user"] == answers["unknown credential"] {
		t.Errorf("a known passkey of a disabled user is answered as unknown: %q", answers["disabled user"])
	}
	for name, a := range answers {
		for _, word := range []string{"alice", "removed\"", "disabled", "handle", "signature", "user "} {
			if strings.Contains(strings.ToLower(a), word) {
				t.Errorf("%s: the answer %q says %q about a user", name, a, word)
			}
		}
	}
	// The audit rows: two unknown-passkey rows in words, tied to no user; no raw library text.
	if n := env.Count("audit", "event = 'login_failed' AND detail = 'passkey not registered (removed or unknown)' AND user_id = ''"); n != 2 {
		t.Errorf("%d login_failed rows saying the passkey is not registered, want 2 (unknown and removed)", n)
	}
	if n := env.Count("audit", "event = 'login_failed' AND detail LIKE '%unable to find%'"); n != 0 {
		t.Errorf("%d login_failed rows carry the library's raw error text", n)
	}
}

// TestOversizedAndGarbageBodies is PUB-25.
func TestOversizedAndGarbageBodies(t *testing.T) {
	env := newEnv(t)
	alice := enrol(t, env, "alice")
	endpoints := map[string]func(t *testing.T, body func(lktest.Options) []byte) func() *lktest.Response{
		"login": func(_ *testing.T, body func(lktest.Options) []byte) func() *lktest.Response {
			return loginAttempt(env, body)
		},
		"register": func(t *testing.T, body func(lktest.Options) []byte) func() *lktest.Response {
			return registerAttempt(t, env, "u", body)
		},
	}
	honest := func(kind string, o lktest.Options) []byte {
		if kind == "login" {
			return alice.pk.Assert(o, origin, lktest.Ceremony{})
		}
		return lktest.NewPasskey().Attest(o, origin, lktest.Ceremony{})
	}
	// edit rewrites one JSON field of an honest body.
	edit := func(body []byte, change func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(body, &m)
		change(m)
		b, _ := json.Marshal(m)
		return b
	}
	huge := bytes.Repeat([]byte("A"), 10<<20)
	tooLarge := map[string]func(kind string, o lktest.Options) []byte{
		"10 MiB body": func(string, lktest.Options) []byte { return huge },
		"1 MiB clientDataJSON": func(kind string, o lktest.Options) []byte {
			return edit(honest(kind, o), func(m map[string]any) {
				m["response"].(map[string]any)["clientDataJSON"] = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte(" "), 1<<20))
			})
		},
		"JSON nested 100000 deep": func(string, lktest.Options) []byte {
			return append(bytes.Repeat([]byte("["), 100000), bytes.Repeat([]byte("]"), 100000)...)
		},
	}
	bad := map[string]func(kind string, o lktest.Options) []byte{
		"JSON nested 30000 deep (under the cap)": func(string, lktest.Options) []byte {
			return append(append([]byte(`{"response":`), bytes.Repeat([]byte(`{"a":`), 10000)...), append([]byte("1"), bytes.Repeat([]byte("}"), 10001)...)...)
		},
		"not JSON":      func(string, lktest.Options) []byte { return []byte("\x00\xff garbage") },
		"empty body":    func(string, lktest.Options) []byte { return nil },
		"JSON null":     func(string, lktest.Options) []byte { return []byte("null") },
		"JSON array":    func(string, lktest.Options) []byte { return []byte("[]") },
		"empty object":  func(string, lktest.Options) []byte { return []byte("{}") },
		"trailing data": func(k string, o lktest.Options) []byte { return append(honest(k, o), `{"x":1}`...) },
		"type with space": func(k string, o lktest.Options) []byte {
			return edit(honest(k, o), func(m map[string]any) { m["type"] = "public-key " })
		},
		"type missing": func(k string, o lktest.Options) []byte {
			return edit(honest(k, o), func(m map[string]any) { delete(m, "type") })
		},
		"1024-byte credential ID": func(k string, o lktest.Options) []byte {
			id := base64.RawURLEncoding.EncodeToString(lktest.RandomKey(1024))
			return edit(honest(k, o), func(m map[string]any) { m["id"], m["rawId"] = id, id })
		},
		"id and rawId differ": func(k string, o lktest.Options) []byte {
			return edit(honest(k, o), func(m map[string]any) { m["rawId"] = base64.RawURLEncoding.EncodeToString(lktest.RandomKey(32)) })
		},
		"standard base64 alphabet": func(k string, o lktest.Options) []byte {
			return edit(honest(k, o), func(m map[string]any) {
				resp := m["response"].(map[string]any)
				for f, v := range resp {
					if s, ok := v.(string); ok {
						raw, _ := base64.RawURLEncoding.DecodeString(s)
						// Make sure the alphabets differ: 0xfb 0xff encode to "+/" in std.
						resp[f] = base64.StdEncoding.EncodeToString(append([]byte{0xfb, 0xff}, raw...))
					}
				}
			})
		},
		"clientDataJSON not JSON": func(k string, o lktest.Options) []byte {
			return edit(honest(k, o), func(m map[string]any) {
				m["response"].(map[string]any)["clientDataJSON"] = base64.RawURLEncoding.EncodeToString([]byte("{{{{"))
			})
		},
		"clientDataJSON with duplicate keys": func(k string, o lktest.Options) []byte {
			return edit(honest(k, o), func(m map[string]any) {
				raw, _ := base64.RawURLEncoding.DecodeString(m["response"].(map[string]any)["clientDataJSON"].(string))
				raw = append(raw[:len(raw)-1], `,"origin":"https://evil.com","type":"webauthn.get"}`...)
				m["response"].(map[string]any)["clientDataJSON"] = base64.RawURLEncoding.EncodeToString(raw)
			})
		},
		"response not an object": func(k string, o lktest.Options) []byte {
			return edit(honest(k, o), func(m map[string]any) { m["response"] = "x" })
		},
	}
	for kind, attempt := range endpoints {
		for name, body := range tooLarge {
			t.Run(kind+"/"+name, func(t *testing.T) {
				do := attempt(t, func(o lktest.Options) []byte { return body(kind, o) })
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				reject(t, env, http.StatusRequestEntityTooLarge, do)
				runtime.ReadMemStats(&after)
				// The client side streams the body from memory it already holds; the server
				// must stop reading at the cap. A few MiB covers the harness.
				if grown := after.TotalAlloc - before.TotalAlloc; grown > 8<<20 {
					t.Errorf("one request allocated %d MiB", grown>>20)
				}
			})
		}
		for name, body := range bad {
			t.Run(kind+"/"+name, func(t *testing.T) {
				reject(t, env, http.StatusBadRequest, attempt(t, func(o lktest.Options) []byte { return body(kind, o) }))
			})
		}
		t.Run(kind+"/non-JSON content type", func(t *testing.T) {
			c := browser(env)
			reject(t, env, http.StatusUnsupportedMediaType, func() *lktest.Response {
				return c.Do(http.MethodPost, "", "/.latchkey/api/"+kind+"/finish", strings.NewReader("{}"),
					http.Header{"Origin": {origin}, "Content-Type": {"text/plain"}})
			})
		})
	}
	// CBOR inside the attestation object and inside the credential public key.
	pk := lktest.NewPasskey()
	honestAD := pk.AuthData("example.com", lktest.FlagUP|lktest.FlagUV, 0, pk.COSEKey())
	for name, obj := range lktest.HostileAttestationObjects(honestAD) {
		t.Run("register/attestationObject "+name, func(t *testing.T) {
			reject(t, env, http.StatusBadRequest, registerAttempt(t, env, "cbor"+name[:3], func(o lktest.Options) []byte {
				return pk.AttestRaw(o, origin, obj)
			}))
		})
	}
	for name, key := range lktest.HostileCOSEKeys(pk.COSEKey()) {
		t.Run("register/credential public key "+name, func(t *testing.T) {
			ad := pk.AuthData("example.com", lktest.FlagUP|lktest.FlagUV, 0, key)
			reject(t, env, http.StatusBadRequest, registerAttempt(t, env, "cose"+name[:3], func(o lktest.Options) []byte {
				return pk.AttestRaw(o, origin, lktest.NoneAttestation(ad))
			}))
		})
	}
	t.Run("control/AttestRaw with an honest object registers", func(t *testing.T) {
		do := registerAttempt(t, env, "control", func(o lktest.Options) []byte {
			return pk.AttestRaw(o, origin, lktest.NoneAttestation(honestAD))
		})
		if r := do(); r.StatusCode != http.StatusOK {
			t.Fatalf("honest raw attestation: %d %s", r.StatusCode, r.Body)
		}
	})
}
