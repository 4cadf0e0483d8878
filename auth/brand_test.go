package auth

import (
	"strings"
	"testing"
)

func TestCheckLogo(t *testing.T) {
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
	for _, tc := range []struct {
		name, body, ext string
	}{
		{"png", png, "png"},
		{"svg", `<svg xmlns="http://www.w3.org/2000/svg"></svg>`, "svg"},
		{"svg after BOM, declaration, comment and doctype", "\xef\xbb\xbf<?xml version=\"1.0\"?>\n<!-- x -->\n<!DOCTYPE svg>\n<svg>", "svg"},
		{"html holding an svg", `<html><svg></svg></html>`, ""},
		{"svgfoo element", `<svgfoo>`, ""},
		{"gif", "GIF89a", ""},
		{"unterminated comment", "<!-- <svg>", ""},
		{"empty", "", ""},
		{"over the limit", png + strings.Repeat("x", MaxLogoBytes), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ext, err := CheckLogo([]byte(tc.body))
			if ext != tc.ext || (err == nil) != (tc.ext != "") {
				t.Errorf("CheckLogo = %q, %v; want %q", ext, err, tc.ext)
			}
		})
	}
}

func TestAccentColor(t *testing.T) {
	for c, ok := range map[string]bool{"#2f5bd3": true, "#25D": true, "#FFFFFF": true, "2f5bd3": false, "#12345": false,
		"#2f5bd3;}": false, "red": false, "#ggg": false, "": false, "#2f5bd3\n": false} {
		if err := CheckAccentColor(c); (err == nil) != ok {
			t.Errorf("CheckAccentColor(%q) = %v, want ok %v", c, err, ok)
		}
	}
	// The button text keeps its contrast: white on a dark accent, near-black on a light one.
	for c, text := range map[string]string{"#2f5bd3": "#ffffff", "#c21e56": "#ffffff", "#ffd84d": "#0b1020", "#fff": "#0b1020", "#000": "#ffffff"} {
		if css := string(accentCSS(c)); !strings.Contains(css, "--accent-text: "+text+";") {
			t.Errorf("accent %s: %s, want text %s", c, css, text)
		}
	}
}
