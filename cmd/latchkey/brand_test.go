package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/auth"
)

// testPNG is a small real PNG image.
func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range 8 {
		img.Set(i, i, color.RGBA{200, 30, 90, 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// An SVG logo that carries a script: it must never run (the logo's own CSP blocks it).
const scriptedSVG = `<?xml version="1.0"?>
<!-- the owner's logo -->
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 28 28"><script>alert(1)</script><rect width="28" height="28" rx="6" fill="#c21e56"/></svg>
`

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigLogoFile: a PNG and an SVG pass `config check` whatever their file names say; a
// file one byte over the limit fails, naming ui.logo_file and the limit.
func TestConfigLogoFile(t *testing.T) {
	pngBytes := testPNG(t)
	big := append(append([]byte{}, pngBytes...), make([]byte, auth.MaxLogoBytes+1-len(pngBytes))...)
	atLimit := big[:auth.MaxLogoBytes]
	for _, tc := range []struct {
		name string
		file string
		body []byte
		want string // "" means valid
	}{
		{"png", "logo.png", pngBytes, ""},
		{"svg named .png", "logo.png", []byte(scriptedSVG), ""},
		{"png at the limit", "logo.png", atLimit, ""},
		{"png over the limit", "logo.png", big, "256 KiB"},
		{"html named .svg", "logo.svg", []byte("<html><svg></svg></html>"), "neither a PNG nor an SVG"},
		{"empty", "logo.svg", nil, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logo := writeFile(t, tc.file, tc.body)
			cfg := writeFile(t, "latchkey.yaml", []byte("ui:\n  logo_file: "+logo+"\n"))
			_, errOut, code := runCLI("config", "check", "--config", cfg)
			if tc.want == "" {
				if code != 0 {
					t.Fatalf("exit %d, want 0:\n%s", code, errOut)
				}
				return
			}
			if code != 2 || !strings.HasPrefix(errOut, "ui.logo_file: ") || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want 2 with a ui.logo_file line saying %q:\n%s", code, tc.want, errOut)
			}
		})
	}
}

var (
	logoRef  = regexp.MustCompile(`<header class="brand"><img src="(/\.latchkey/static/brand/logo-[0-9a-f]{16}\.svg)"`)
	styleRef = regexp.MustCompile(`<link rel="stylesheet" href="(/\.latchkey/static/brand/theme-[0-9a-f]{16}\.css)">`)
)

// TestServeBrand: `serve` with the ui keys shows the owner's name in the header and title, the
// support line on the login and recovery pages, the logo from a hashed URL with immutable caching
// and a script-blocking policy, the accent colour in a generated stylesheet, and the name as the
// WebAuthn relying party's.
func TestServeBrand(t *testing.T) {
	logo := writeFile(t, "logo.svg", []byte(scriptedSVG))
	r, token := startServe(t, "http", map[string]string{
		"LATCHKEY_UI_NAME":         "Family Cloud",
		"LATCHKEY_UI_LOGO_FILE":    logo,
		"LATCHKEY_UI_ACCENT_COLOR": "#C21E56",
		"LATCHKEY_UI_SUPPORT_TEXT": "Ask Sam if you are locked out",
	})
	c := r.client(t, nil)

	page := c.Do(http.MethodGet, "", "/.latchkey/login", nil, navigation)
	body := string(page.Body)
	if page.StatusCode != http.StatusOK {
		t.Fatalf("login page: %d", page.StatusCode)
	}
	for _, want := range []string{
		"<title>Sign in · Family Cloud</title>",
		"<span>Family Cloud</span>",
		`<p class="support" id="support-text">Ask Sam if you are locked out</p>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "Latchkey</") || strings.Contains(body, "latchkey.svg") {
		t.Errorf("the login page still shows Latchkey's own brand:\n%s", body)
	}
	rec := string(c.Do(http.MethodGet, "", "/.latchkey/recover", nil, navigation).Body)
	if !strings.Contains(rec, "Ask Sam if you are locked out") || !strings.Contains(rec, "<title>Recover access · Family Cloud</title>") {
		t.Errorf("recovery page lacks the brand:\n%s", rec)
	}
	if notFound := string(c.Do(http.MethodGet, "", "/.latchkey/nothing-here", nil, navigation).Body); !strings.Contains(notFound, "· Family Cloud</title>") {
		t.Errorf("error page title lacks the name:\n%s", notFound)
	}

	m := logoRef.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no hashed logo in the header:\n%s", body)
	}
	img := c.Do(http.MethodGet, "", m[1], nil, nil)
	if img.StatusCode != http.StatusOK || string(img.Body) != scriptedSVG {
		t.Fatalf("logo: %d %q", img.StatusCode, img.Body)
	}
	for k, want := range map[string]string{
		"Content-Type":            "image/svg+xml",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
		"Cache-Control":           "public, max-age=31536000, immutable",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := img.Header.Get(k); got != want {
			t.Errorf("logo %s: %q, want %q", k, got, want)
		}
	}
	if other := c.Do(http.MethodGet, "", strings.Replace(m[1], "logo-", "logo-0", 1), nil, nil); other.StatusCode != http.StatusNotFound {
		t.Errorf("a logo name with another hash: %d, want 404", other.StatusCode)
	}

	s := styleRef.FindStringSubmatch(body)
	if s == nil {
		t.Fatalf("no accent stylesheet linked:\n%s", body)
	}
	css := c.Do(http.MethodGet, "", s[1], nil, nil)
	if css.StatusCode != http.StatusOK || css.Header.Get("Content-Type") != "text/css; charset=utf-8" ||
		css.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		!strings.Contains(string(css.Body), "--accent: #c21e56; --accent-text: #ffffff;") {
		t.Fatalf("accent stylesheet: %d %v\n%s", css.StatusCode, css.Header, css.Body)
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "style-src 'self';") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("the page CSP changed: %q", csp)
	}

	begin := c.PostJSON("/.latchkey/api/register/begin", map[string]string{"token": token})
	var opts struct {
		PublicKey struct {
			RP struct{ Name string } `json:"rp"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(begin.Body, &opts); err != nil || opts.PublicKey.RP.Name != "Family Cloud" {
		t.Errorf("register options rp.name %q (%v), want the ui.name:\n%s", opts.PublicKey.RP.Name, err, begin.Body)
	}
}

// TestServeNoBrand: without ui keys the pages wear Latchkey's own logo and no extra stylesheet.
func TestServeNoBrand(t *testing.T) {
	r, _ := startServe(t, "http", nil)
	body := string(r.client(t, nil).Do(http.MethodGet, "", "/.latchkey/login", nil, navigation).Body)
	if !strings.Contains(body, `<img src="/.latchkey/static/latchkey.svg"`) || !strings.Contains(body, "<title>Sign in · Latchkey</title>") ||
		strings.Contains(body, "/brand/") || strings.Contains(body, `id="support-text"`) {
		t.Errorf("unbranded login page:\n%s", body)
	}
}
