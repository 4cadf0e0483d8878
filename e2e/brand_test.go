package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// brandLogo is the owner's logo: a magenta tile with a white key hole, as SVG.
const brandLogo = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 56 28" width="56" height="28">` +
	`<rect width="56" height="28" rx="6" fill="#c21e56"/><circle cx="14" cy="12" r="5" fill="#fff"/>` +
	`<rect x="12" y="14" width="4" height="9" fill="#fff"/><rect x="24" y="10" width="26" height="8" rx="4" fill="#fff"/></svg>`

// TestBrandedLoginPage (issue 21): with ui.name, ui.logo_file, ui.accent_color and
// ui.support_text the login and recovery pages wear the owner's brand: the logo loads from
// Latchkey itself, the buttons take the accent colour through the generated stylesheet (the
// page's CSP still allows no inline style), and the title and header say the owner's name.
func TestBrandedLoginPage(t *testing.T) {
	logo := filepath.Join(t.TempDir(), "family.svg")
	if err := os.WriteFile(logo, []byte(brandLogo), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, serverConfig{yaml: "ui:\n  name: Family Cloud\n  logo_file: " + logo +
		"\n  accent_color: \"#c21e56\"\n  support_text: Ask Sam if you are locked out\n"})
	for _, dark := range []bool{false, true} {
		tb := newTab(t, tabOptions{dark: dark})
		suffix := map[bool]string{false: "", true: "-dark"}[dark]
		tb.navigate(srv.URL + "/.latchkey/login")
		tb.waitFor("the page script", `document.getElementById("username") !== null`)
		if got := eval[string](tb, `document.title`); got != "Sign in · Family Cloud" {
			t.Errorf("title %q", got)
		}
		if got := eval[string](tb, `document.querySelector("header.brand span").textContent`); got != "Family Cloud" {
			t.Errorf("header name %q", got)
		}
		tb.waitFor("the logo", `(() => { const i = document.querySelector("header.brand img"); return i.complete && i.naturalWidth > 0; })()`)
		src := eval[string](tb, `document.querySelector("header.brand img").src`)
		if !strings.HasPrefix(src, srv.URL+"/.latchkey/static/brand/logo-") || !strings.HasSuffix(src, ".svg") {
			t.Errorf("logo from %q, want a hashed URL on Latchkey", src)
		}
		if w := eval[float64](tb, `document.querySelector("header.brand img").getBoundingClientRect().width`); w < 55 || w > 57 {
			t.Errorf("the 2:1 logo is %v px wide at 28 px high, want 56", w)
		}
		if bg := eval[string](tb, `getComputedStyle(document.getElementById("passkey-login")).backgroundColor`); bg != "rgb(194, 30, 86)" {
			t.Errorf("the sign-in button's background is %s, want the accent rgb(194, 30, 86)", bg)
		}
		if !tb.visible("support-text") || tb.text("support-text") != "Ask Sam if you are locked out" {
			t.Errorf("support line %q (visible %v)", tb.text("support-text"), tb.visible("support-text"))
		}
		if n := eval[int](tb, `performance.getEntriesByType("resource").filter(e => !e.name.startsWith(location.origin)).length`); n != 0 {
			t.Errorf("%d resources loaded from elsewhere", n)
		}
		tb.shot("branded-login" + suffix)

		tb.navigate(srv.URL + "/.latchkey/recover")
		tb.waitFor("the recovery page", `document.getElementById("recover-form") !== null`)
		if got := eval[string](tb, `document.title`); got != "Recover access · Family Cloud" {
			t.Errorf("recovery title %q", got)
		}
		if !tb.visible("support-text") {
			t.Error("no support line on the recovery page")
		}
		tb.shot("branded-recover" + suffix)
	}
}
