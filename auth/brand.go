package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Brand is what the owner's pages wear (issue 21): the product name, a logo and an accent colour,
// and a support line on the login and recovery pages. The zero value is Latchkey's own.
type Brand struct {
	// Name is the product name in the header and every page title (default "Latchkey").
	Name string
	// Logo is a PNG or SVG image (CheckLogo); nil shows Latchkey's own.
	Logo []byte
	// AccentColor is "#rgb" or "#rrggbb" (CheckAccentColor); "" keeps the built-in colours.
	AccentColor string
	// SupportText is one short line ("Ask Sam if you are locked out"); "" shows none.
	SupportText string
}

// MaxLogoBytes bounds ui.logo_file: a logo is a small header image, and the whole file is kept in
// memory and sent with every first page view.
const MaxLogoBytes = 256 << 10

var accentRe = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// CheckAccentColor accepts "#rgb" and "#rrggbb": nothing else reaches the generated stylesheet.
func CheckAccentColor(c string) error {
	if !accentRe.MatchString(c) {
		return fmt.Errorf("must be a colour such as #2f5bd3 or #25d, got %q", c)
	}
	return nil
}

// CheckLogo tells a logo's type from its content (never from a file name) and returns its file
// extension: "png" or "svg".
func CheckLogo(b []byte) (string, error) {
	if len(b) == 0 {
		return "", errors.New("the file is empty")
	}
	if len(b) > MaxLogoBytes {
		return "", fmt.Errorf("the file has %d bytes; a logo may have at most %d (256 KiB)", len(b), MaxLogoBytes)
	}
	if http.DetectContentType(b) == "image/png" {
		return "png", nil
	}
	if isSVG(b) {
		return "svg", nil
	}
	return "", errors.New("the file is neither a PNG nor an SVG image")
}

// isSVG reports whether b is XML text whose first element is <svg>: an optional BOM, XML
// declaration, comments and doctype may come before it.
func isSVG(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	for {
		b = bytes.TrimLeft(b, " \t\r\n")
		switch {
		case bytes.HasPrefix(b, []byte("<?")):
			i := bytes.Index(b, []byte("?>"))
			if i < 0 {
				return false
			}
			b = b[i+2:]
		case bytes.HasPrefix(b, []byte("<!--")):
			i := bytes.Index(b, []byte("-->"))
			if i < 0 {
				return false
			}
			b = b[i+3:]
		case bytes.HasPrefix(b, []byte("<!")):
			i := bytes.IndexByte(b, '>')
			if i < 0 {
				return false
			}
			b = b[i+1:]
		default:
			return bytes.HasPrefix(b, []byte("<svg")) && len(b) > 4 && strings.ContainsRune(" \t\r\n>/", rune(b[4]))
		}
	}
}

// brandAsset is one generated file under /.latchkey/static/brand/, named by a hash of its content
// so that it can be cached forever.
type brandAsset struct {
	path        string // the URL path
	contentType string
	body        []byte
}

// brandAssets are the logo and the accent stylesheet, each nil when the brand has none.
type brandAssets struct {
	name, support string
	logo, css     *brandAsset
}

func newBrandAssets(b Brand) (*brandAssets, error) {
	a := &brandAssets{name: b.Name, support: b.SupportText}
	if a.name == "" {
		a.name = "Latchkey"
	}
	if b.Logo != nil {
		ext, err := CheckLogo(b.Logo)
		if err != nil {
			return nil, fmt.Errorf("auth: logo: %w", err)
		}
		ct := map[string]string{"png": "image/png", "svg": "image/svg+xml"}[ext]
		a.logo = hashedAsset("logo", ext, ct, b.Logo)
	}
	if b.AccentColor != "" {
		if err := CheckAccentColor(b.AccentColor); err != nil {
			return nil, fmt.Errorf("auth: accent colour: %w", err)
		}
		a.css = hashedAsset("theme", "css", "text/css; charset=utf-8", accentCSS(b.AccentColor))
	}
	return a, nil
}

func hashedAsset(name, ext, contentType string, body []byte) *brandAsset {
	sum := sha256.Sum256(body)
	return &brandAsset{path: "/.latchkey/static/brand/" + name + "-" + hex.EncodeToString(sum[:8]) + "." + ext, contentType: contentType, body: body}
}

// accentCSS sets the accent in light and dark mode alike (the owner chose one colour), with a
// button text colour that keeps enough contrast on it.
func accentCSS(c string) []byte {
	c = strings.ToLower(c)
	text := "#ffffff"
	if luminance(c) > 0.45 {
		text = "#0b1020"
	}
	return []byte(":root { --accent: " + c + "; --accent-text: " + text + "; }\n" +
		"@media (prefers-color-scheme: dark) { :root { --accent: " + c + "; --accent-text: " + text + "; } }\n")
}

// luminance is the WCAG relative luminance of a validated "#rgb" or "#rrggbb" colour.
func luminance(c string) float64 {
	h := c[1:]
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	var l float64
	for i, w := range []float64{0.2126, 0.7152, 0.0722} {
		v, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		x := float64(v) / 255
		if x <= 0.03928 {
			x /= 12.92
		} else {
			x = math.Pow((x+0.055)/1.055, 2.4)
		}
		l += w * x
	}
	return l
}

// serve answers a GET for one brand asset: immutable caching, and for an SVG a policy under which
// a script inside the image never runs, even when the file is opened on its own.
func (a *brandAsset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	SecurityHeaders(h)
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	if strings.HasPrefix(a.contentType, "image/svg") {
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	}
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(a.body)
	}
}

// brandView is what the page templates see of the brand.
type brandView struct {
	Name    string
	Logo    string // the logo's URL path
	Style   string // the accent stylesheet's URL path, or ""
	Support string
}

func (a *brandAssets) view() brandView {
	v := brandView{Name: a.name, Logo: "/.latchkey/static/latchkey.svg", Support: a.support}
	if a.logo != nil {
		v.Logo = a.logo.path
	}
	if a.css != nil {
		v.Style = a.css.path
	}
	return v
}

// brandFile serves the logo and the accent stylesheet under their hashed names; any other name
// (an old hash after the owner changed the logo, say) is not found.
func (s *Service) brandFile(w http.ResponseWriter, r *http.Request) {
	for _, a := range []*brandAsset{s.brand.logo, s.brand.css} {
		if a != nil && r.URL.Path == a.path {
			a.serve(w, r)
			return
		}
	}
	s.ErrorPage(w, r, http.StatusNotFound, "There is no such file.")
}
