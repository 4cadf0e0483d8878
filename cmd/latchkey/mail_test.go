package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

// smtpRelay is a real SMTP server (go-smtp) on 127.0.0.1 that offers STARTTLS with a test CA and
// AUTH PLAIN, and hands every message it accepts to the test.
type smtpRelay struct {
	port     int
	roots    *x509.CertPool
	user     string
	password string
	msgs     chan relayed
}

type relayed struct {
	from string
	to   []string
	tls  bool
	data []byte
}

func startRelay(t *testing.T) *smtpRelay {
	t.Helper()
	cert, roots := testCert(t)
	rl := &smtpRelay{roots: roots, user: "latchkey", password: "relay-secret", msgs: make(chan relayed, 8)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{relay: rl, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 1 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl.port = ln.Addr().(*net.TCPAddr).Port
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return rl
}

type relaySession struct {
	relay  *smtpRelay
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.relay.user || pass != s.relay.password {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, secure := s.conn.TLSConnectionState()
	s.relay.msgs <- relayed{from: s.from, to: s.to, tls: secure, data: b}
	return nil
}

func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }

func (rl *smtpRelay) next(t *testing.T) relayed {
	t.Helper()
	select {
	case m := <-rl.msgs:
		return m
	case <-time.After(15 * time.Second):
		t.Fatal("no message reached the SMTP server")
		return relayed{}
	}
}

// testCert makes a self-signed certificate for localhost and 127.0.0.1.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

func (rl *smtpRelay) config(t *testing.T) SMTPConfig {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pwFile, []byte(rl.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return SMTPConfig{Host: "127.0.0.1", Port: rl.port, Username: rl.user, PasswordFile: pwFile,
		From: "Latchkey <latchkey@example.com>", TLS: "starttls"}
}

// textBody decodes the message's body as its Content-Transfer-Encoding says.
func textBody(t *testing.T, msg *mail.Message) string {
	t.Helper()
	var r io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var recoveryLinkRE = regexp.MustCompile(`https?://\S+/\.latchkey/recover\?token=[A-Za-z0-9_%-]+`)

// TestMagicLinkOverSMTP sends a recovery link through the real mailer to a real SMTP server
// (STARTTLS, AUTH PLAIN, password from a file), checks the message that arrived, and follows the
// link to a new passkey; the link works once.
func TestMagicLinkOverSMTP(t *testing.T) {
	relay := startRelay(t)
	mailer, err := newSMTPMailer(relay.config(t), &tls.Config{ServerName: "127.0.0.1", RootCAs: relay.roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	env := lktest.New(t, lktest.Config{Mailer: mailer, DefaultPolicy: "deny",
		Rules: []proxy.RuleConfig{{Hosts: []string{"app.localhost"}, Policy: "passkey"}}})
	u, token := env.AddUser("alice")
	old := lktest.NewPasskey()
	env.Client().Enrol(old, token)

	r := env.Client().PostJSON("/.latchkey/api/recover/email", map[string]string{"user": "alice"})
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("recover/email: %d %s", r.StatusCode, r.Body)
	}
	got := relay.next(t)
	if !got.tls {
		t.Fatal("the message was sent without STARTTLS")
	}
	if got.from != "latchkey@example.com" || len(got.to) != 1 || got.to[0] != u.Email {
		t.Fatalf("envelope from %q to %v", got.from, got.to)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(got.data)))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, got.data)
	}
	if to, _ := mail.ParseAddress(msg.Header.Get("To")); to == nil || to.Address != u.Email {
		t.Fatalf("To: %q", msg.Header.Get("To"))
	}
	if subj := msg.Header.Get("Subject"); subj != "Recover your Latchkey account" {
		t.Fatalf("Subject: %q", subj)
	}
	if msg.Header.Get("Auto-Submitted") != "auto-generated" || msg.Header.Get("Message-Id") == "" || msg.Header.Get("Date") == "" {
		t.Fatalf("headers: %v", msg.Header)
	}
	body := textBody(t, msg)
	link := recoveryLinkRE.FindString(body)
	if link == "" {
		t.Fatalf("no link in the mail:\n%s", body)
	}
	lu, err := url.Parse(link)
	if err != nil || lu.Host != env.Public.Host {
		t.Fatalf("link %q does not point at the portal %s", link, env.Public.Host)
	}
	if !strings.Contains(body, "15 minutes") {
		t.Fatalf("the mail does not say how long the link works:\n%s", body)
	}

	b := env.Client()
	// The link shows a page whose button uses it up (mail scanners fetch links too).
	if r := b.Get(lu.RequestURI()); r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), `id="recover-link-continue"`) {
		t.Fatalf("open link: %d %s", r.StatusCode, r.Body)
	}
	if r := b.PostJSON("/.latchkey/api/recover/link", map[string]string{"token": lu.Query().Get("token")}); r.StatusCode != http.StatusOK ||
		!strings.Contains(string(r.Body), "/.latchkey/enroll") {
		t.Fatalf("use link: %d %s", r.StatusCode, r.Body)
	}
	before := env.Tables()
	if r := env.Client().Get(lu.RequestURI()); r.StatusCode != http.StatusForbidden {
		t.Fatalf("second use of the link: %d", r.StatusCode)
	}
	if env.Tables() != before {
		t.Fatal("a second use of the link wrote to the database")
	}
	fresh := lktest.NewPasskey()
	b.Enrol(fresh, "")
	for name, pk := range map[string]*lktest.Passkey{"new": fresh, "old": old} {
		c := env.Client()
		c.Login(pk, "")
		if r := c.Forward("app.localhost", "/", nil); r.StatusCode != http.StatusOK || r.Header.Get("Remote-User") != "alice" {
			t.Fatalf("%s passkey after recovery: %d", name, r.StatusCode)
		}
	}
}

func TestSMTPMailerRefusals(t *testing.T) {
	relay := startRelay(t)
	trust := &tls.Config{ServerName: "127.0.0.1", RootCAs: relay.roots, MinVersion: tls.VersionTLS12}
	for _, tc := range []struct {
		name string
		edit func(*SMTPConfig)
		tls  *tls.Config
	}{
		{"wrong password", func(c *SMTPConfig) { c.PasswordFile = ""; c.Password = "nope" }, trust},
		{"untrusted certificate", func(*SMTPConfig) {}, nil},
		{"no TLS where the relay wants a login", func(c *SMTPConfig) { c.TLS = "none" }, trust},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := relay.config(t)
			tc.edit(&cfg)
			m, err := newSMTPMailer(cfg, tc.tls)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Send(t.Context(), "alice@example.com", "s", "b"); err == nil {
				t.Fatal("sent")
			}
			select {
			case <-relay.msgs:
				t.Fatal("a message was accepted")
			default:
			}
		})
	}
	t.Run("password_file and password both set", func(t *testing.T) {
		cfg := relay.config(t)
		cfg.Password = "x"
		if _, err := newSMTPMailer(cfg, nil); err == nil || !strings.Contains(err.Error(), "smtp.password") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no host, no mailer", func(t *testing.T) {
		m, err := newMailer(SMTPConfig{})
		if err != nil || m != nil {
			t.Fatalf("newMailer without host = %v, %v", m, err)
		}
	})
	t.Run("the password never appears in an error", func(t *testing.T) {
		cfg := relay.config(t)
		cfg.PasswordFile, cfg.Password = "", "hunter2-secret"
		m, _ := newSMTPMailer(cfg, trust)
		cfg.Port = freePortNum(t)
		m.cfg.Port = cfg.Port
		err := m.Send(t.Context(), "alice@example.com", "s", "b")
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("err = %v", err)
		}
	})
}

// freePortNum returns a port on 127.0.0.1 that nothing listens on.
func freePortNum(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestMagicLinkInReadersLanguage (issue 21): the mail speaks the language of the page that asked
// for it (here French, from the remembered switcher choice), subject included, encoded so that
// the accents arrive intact.
func TestMagicLinkInReadersLanguage(t *testing.T) {
	relay := startRelay(t)
	mailer, err := newSMTPMailer(relay.config(t), &tls.Config{ServerName: "127.0.0.1", RootCAs: relay.roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	env := lktest.New(t, lktest.Config{Mailer: mailer})
	_, token := env.AddUser("alice")
	env.Client().Enrol(lktest.NewPasskey(), token)

	b := env.Client()
	b.Cookies["latchkey_lang"] = "fr"
	if r := b.PostJSON("/.latchkey/api/recover/email", map[string]string{"user": "alice"}); r.StatusCode != http.StatusAccepted {
		t.Fatalf("recover/email: %d %s", r.StatusCode, r.Body)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(relay.next(t).data)))
	if err != nil {
		t.Fatal(err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subj != "Récupérer votre compte Latchkey" {
		t.Fatalf("Subject %q (%v)", subj, err)
	}
	body := textBody(t, msg)
	for _, want := range []string{"Bonjour alice,", "clé d'accès", "dans les 15 minutes"} {
		if !strings.Contains(body, want) {
			t.Errorf("the mail lacks %q:\n%s", want, body)
		}
	}
	if recoveryLinkRE.FindString(body) == "" {
		t.Errorf("no link in the mail:\n%s", body)
	}
}
