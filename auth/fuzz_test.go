package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/store"
)

// Fuzz targets for the parsers an attacker reaches without any credential: the session cookie
// decoder and the two ceremony finish handlers. scripts/fuzz runs each for a bounded number of
// inputs; the seeds live in testdata/fuzz/<Target>/.

var fuzzHashKey, fuzzBlockKey = bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 32)

// FuzzCookieDecode: decoding never panics, a value for one cookie never decodes as the other,
// and no change to a minted value's bytes is accepted (no forgery, no other session ID).
func FuzzCookieDecode(f *testing.F) {
	sessions := newCodec("latchkey_session", fuzzHashKey, fuzzBlockKey, 24*time.Hour)
	ceremony := newCodec("latchkey_ceremony", subKey(fuzzHashKey, "ceremony-hash"), subKey(fuzzBlockKey, "ceremony-block"), CeremonyTTL)
	// Minted in every fuzz process (values carry a random IV, so they cannot be seeds).
	type mintedValue struct {
		value string
		raw   []byte
		id    [sessionIDLen]byte
	}
	var minted []mintedValue
	for i := range 4 {
		var id [sessionIDLen]byte
		id[0], id[15] = byte(i), 0xaa
		v, err := sessions.encode(id, time.Now())
		if err != nil {
			f.Fatal(err)
		}
		raw, _ := base64.URLEncoding.DecodeString(v)
		minted = append(minted, mintedValue{v, raw, id})
	}
	for _, s := range []string{"", "=", "AAAA", strings.Repeat("A", 5000), "MTcwMDAwMDAwMHx4fHk=", "\x00\xff", `"quoted"`} {
		f.Add(s, uint16(0), byte(0))
	}
	f.Add("", uint16(10), byte(1))
	f.Add("", uint16(200), byte(0x80))
	f.Fuzz(func(t *testing.T, value string, at uint16, xor byte) {
		// Any string: no panic, the two codecs never both accept it, the cache agrees.
		id, err := sessions.decode(value)
		if _, cerr := ceremony.decode(value); cerr == nil && err == nil {
			t.Fatalf("one value decodes as both cookies: %q", value)
		}
		cid, cerr := sessions.decodeCached(value)
		if (cerr == nil) != (err == nil) || cid != id {
			t.Fatalf("decodeCached disagrees with decode for %q", value)
		}
		// A minted value with one byte changed.
		if xor == 0 {
			return
		}
		m := minted[int(at)%len(minted)]
		b := []byte(m.value)
		b[int(at)%len(b)] ^= xor
		changed := string(b)
		got, err := sessions.decode(changed)
		if err != nil {
			return
		}
		raw, rerr := base64.URLEncoding.DecodeString(changed)
		if got != m.id || rerr != nil || !bytes.Equal(raw, m.raw) {
			t.Fatalf("a changed cookie was accepted: %q → %x", changed, got)
		}
	})
}

// fuzzService is a real Service on a real SQLite file with one user who has no passkey yet.
func fuzzService(f *testing.F) (*Service, store.User) {
	f.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Path: filepath.Join(f.TempDir(), "fuzz.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	public, _ := url.Parse("https://auth.example.com")
	s, err := New(ctx, st, Options{PublicURL: public, RPID: "example.com", HashKey: fuzzHashKey, BlockKey: fuzzBlockKey})
	if err != nil {
		f.Fatal(err)
	}
	u := store.User{ID: uuid.NewString(), Name: "fuzz"}
	if err := st.CreateUser(ctx, u); err != nil {
		f.Fatal(err)
	}
	return s, u
}

// finishOnce begins a ceremony (state stored, cookie minted) and posts body to the finish
// endpoint with that cookie, so that every input reaches the WebAuthn parser.
func finishOnce(t *testing.T, s *Service, routes http.Handler, kind string, st ceremonyState, body []byte) *httptest.ResponseRecorder {
	begin := httptest.NewRecorder()
	if err := s.beginCeremony(context.Background(), begin, kind, st); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "https://auth.example.com/.latchkey/api/"+kind+"/finish", bytes.NewReader(body))
	req.Header.Set("Origin", "https://auth.example.com")
	req.Header.Set("Content-Type", "application/json")
	for _, c := range begin.Result().Cookies() {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	routes.ServeHTTP(w, req)
	return w
}

// checkRefused: a fuzzed body can never sign anyone in or break the server.
func checkRefused(t *testing.T, w *httptest.ResponseRecorder, body []byte) {
	if w.Code < 400 || w.Code >= 500 {
		t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == "latchkey_session" && c.Value != "" {
			t.Fatalf("a session cookie for body %q", body)
		}
	}
}

func addFinishSeeds(f *testing.F) {
	for _, s := range []string{"", "{}", "null", "[]", `{"id":"","rawId":"","type":"public-key","response":{}}`,
		`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AAAA","signature":"AAAA","userHandle":"AAAA"}}`,
		`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`,
		strings.Repeat("[", 1000)} {
		f.Add([]byte(s))
	}
}

// FuzzLoginFinish feeds arbitrary bodies to login/finish behind a valid ceremony cookie.
func FuzzLoginFinish(f *testing.F) {
	s, _ := fuzzService(f)
	routes := s.Routes()
	_, session, err := s.wa.BeginDiscoverableLogin()
	if err != nil {
		f.Fatal(err)
	}
	addFinishSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkRefused(t, finishOnce(t, s, routes, kindLogin, ceremonyState{Session: *session}, body), body)
	})
}

// FuzzRegisterFinish feeds arbitrary bodies to register/finish behind a valid ceremony cookie
// for an enrolment in progress.
func FuzzRegisterFinish(f *testing.F) {
	s, u := fuzzService(f)
	routes := s.Routes()
	wu, _, err := s.loadWAUser(context.Background(), u)
	if err != nil {
		f.Fatal(err)
	}
	_, session, err := s.wa.BeginRegistration(wu, webauthn.WithCredentialParameters(credentialParameters))
	if err != nil {
		f.Fatal(err)
	}
	addFinishSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkRefused(t, finishOnce(t, s, routes, kindRegister, ceremonyState{Session: *session, UserID: u.ID}, body), body)
	})
}
