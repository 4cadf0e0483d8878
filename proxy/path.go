package proxy

import (
	"errors"
	"path"
	"unicode"
	"unicode/utf8"
)

// ErrAmbiguousPath is returned (wrapped) by NormalizePath for a path that different upstreams
// could read differently. Callers answer it with 400 rather than guess which reading is meant.
var ErrAmbiguousPath = errors.New("proxy: ambiguous path")

// pathError carries the reason a path was refused. The values are package-level so that a
// refusal does not allocate either; errors.Is(err, ErrAmbiguousPath) holds for each.
type pathError struct{ reason string }

func (e *pathError) Error() string { return ErrAmbiguousPath.Error() + ": " + e.reason }
func (e *pathError) Unwrap() error { return ErrAmbiguousPath }

var (
	errNotAbsolute    = &pathError{"does not start with /"}
	errBadEscape      = &pathError{"invalid percent escape"}
	errEncodedSlash   = &pathError{"encoded slash"}
	errEncodedPercent = &pathError{"encoded percent sign (double encoding)"}
	errBackslash      = &pathError{"backslash"}
	errControl        = &pathError{"control character"}
	errParameter      = &pathError{"path parameter (;)"}
	errQueryFragment  = &pathError{"? or # inside the path"}
	errBadUTF8        = &pathError{"invalid UTF-8"}
)

// NormalizePath takes the raw, still percent-encoded request path (no query, no fragment) and
// returns the percent-decoded path with dot segments removed and duplicate slashes collapsed
// (path.Clean semantics), keeping a trailing slash: the result starts with "/", and ends with
// "/" exactly when the request names a directory (it ends with "/", "/." or "/.."; RFC 3986
// remove_dot_segments reads "/admin/x/.." as "/admin/"). So "/admin/", "//admin/",
// "/./admin/", "/x/../admin/", "/%61dmin/" and "/admin//" are all "/admin/", and a rule
// "^/admin/" covers each; "/admin" stays "/admin", a different path (issue 16). An empty path
// is "/". Encoded dot segments are decoded first and then removed, so "/public/%2e%2e/admin"
// is "/admin". Letter case is kept: paths are case-sensitive.
//
// It returns an error wrapping ErrAmbiguousPath, and never a guess, for: a path not starting
// with "/"; an encoded slash (%2F); a backslash raw or encoded (IIS and some Windows upstreams
// treat it as a separator); a control character raw or encoded (C0, DEL and C1); an invalid or
// truncated escape; invalid UTF-8 after decoding; ';' raw or encoded (path parameters, which
// Tomcat/Jetty strip before routing).
//
// Beyond the DESIGN list it also refuses %25 (an encoded '%': "%252F" decodes to "%2F",
// which a second decoding upstream reads as a slash, and it would make the result
// non-idempotent) and '?' or '#' raw or encoded (a raw one means the caller did not split
// off the query; an encoded one turns into a query or fragment delimiter for any upstream
// that re-serialises the decoded path). Traefik v3 refuses the same encoded characters.
//
// A raw space is accepted: it is exactly what %20 decodes to, so refusing it would make the
// result non-idempotent. A raw space cannot occur in a real request line, so the forward-auth
// adapters refuse whitespace in X-Forwarded-Uri / X-Original-URL themselves (HOSTILE PUB-02).
//
// NormalizePath does not allocate when raw is already canonical.
func NormalizePath(raw string) (string, error) {
	if raw == "" {
		return "/", nil
	}
	if raw[0] != '/' {
		return "", errNotAbsolute
	}
	if isCanonicalPath(raw) {
		return raw, nil
	}
	return normalizeSlow(raw)
}

// isCanonicalPath reports whether raw (starting with "/") is plain ASCII with nothing to
// decode, no refused byte, and no dot segment or empty segment (apart from the one after a
// trailing slash), so that NormalizePath would return it unchanged. Any doubt sends the caller to normalizeSlow,
// which is the authority on errors.
func isCanonicalPath(raw string) bool {
	if raw == "/" {
		return true
	}
	seg := 1 // start of the current segment
	for i := 1; i <= len(raw); i++ {
		if i == len(raw) || raw[i] == '/' {
			switch raw[seg:i] {
			case "":
				if i < len(raw) {
					return false // "//"
				}
			case ".", "..":
				return false
			}
			seg = i + 1
			continue
		}
		if c := raw[i]; c < 0x20 || c >= 0x7f || refusedByte(c) || c == '%' {
			return false
		}
	}
	return true
}

// refusedByte reports printable ASCII bytes that NormalizePath refuses whether raw or
// decoded.
func refusedByte(c byte) bool {
	return c == '\\' || c == ';' || c == '?' || c == '#'
}

// checkDecoded returns the error for a decoded (or raw, non-'%') byte, or nil.
func checkDecoded(c byte) error {
	switch {
	case c < 0x20 || c == 0x7f:
		return errControl
	case c == '\\':
		return errBackslash
	case c == ';':
		return errParameter
	case c == '?' || c == '#':
		return errQueryFragment
	}
	return nil
}

func normalizeSlow(raw string) (string, error) {
	buf := make([]byte, 0, len(raw))
	nonASCII := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) {
				return "", errBadEscape
			}
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return "", errBadEscape
			}
			c = hi<<4 | lo
			i += 2
			switch c {
			case '/':
				return "", errEncodedSlash
			case '%':
				return "", errEncodedPercent
			}
		}
		if err := checkDecoded(c); err != nil {
			return "", err
		}
		if c >= utf8.RuneSelf {
			nonASCII = true
		}
		buf = append(buf, c)
	}
	if nonASCII {
		if !utf8.Valid(buf) {
			return "", errBadUTF8
		}
		// C1 controls (U+0080..U+009F) are control characters too; some upstreams treat
		// U+0085 (NEL) as a line break.
		for _, r := range string(buf) {
			if unicode.IsControl(r) {
				return "", errControl
			}
		}
	}
	dir := len(buf) > 0 && buf[len(buf)-1] == '/' ||
		len(buf) >= 2 && string(buf[len(buf)-2:]) == "/." ||
		len(buf) >= 3 && string(buf[len(buf)-3:]) == "/.."
	p := path.Clean(string(buf))
	if dir && p != "/" {
		p += "/"
	}
	return p, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
