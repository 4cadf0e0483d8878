package account

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the fields a person or an admin types.
const (
	MaxUserName    = 64
	MaxDisplayName = 200
	MaxEmail       = 254 // RFC 5321's path limit
	MaxGroup       = 64
	MaxGroups      = 32
)

// InvalidError is a refusal of input: Field names what was wrong and Msg says what is accepted.
// Both are safe to show to whoever typed the input, on a terminal or in a page: the input is
// quoted with %q, so control characters in it are escaped, never printed.
//
// Format and Args are Msg before formatting: the web pages show the refusal in the reader's
// language with the English Format as the catalogue key (issue 21).
type InvalidError struct {
	Field  string
	Msg    string
	Format string
	Args   []any
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Msg }

// IsInvalid reports whether err is a refusal of input (as opposed to a technical failure).
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Msg: fmt.Sprintf(format, args...), Format: format, Args: args}
}

// HasControl reports characters that could rewrite a terminal or hide text in a page: C0 and C1
// controls (escape sequences, newlines, tabs) and format characters (bidirectional overrides,
// zero-width joiners). Invalid UTF-8 counts as well. Every field a person names something with
// is refused when it holds one.
func HasControl(s string) bool { return hasControl(s) }

func hasControl(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return true
		}
	}
	return false
}

// ValidUserName accepts a login name: 1 to 64 ASCII letters, digits and . _ @ -. The name is
// what Remote-User carries to every application, so it is kept to characters that no
// application, log or header parser reads as anything else.
func ValidUserName(name string) error {
	if name == "" || len(name) > MaxUserName {
		return invalid("user name", "%q: use 1 to %d letters, digits and . _ @ -", name, MaxUserName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r)) {
			return invalid("user name", "%q: use 1 to %d letters, digits and . _ @ -", name, MaxUserName)
		}
	}
	return nil
}

// ValidDisplayName accepts any printable text of at most 200 characters (empty: none).
func ValidDisplayName(name string) error {
	if hasControl(name) {
		return invalid("display name", "%q: no control characters", name)
	}
	if utf8.RuneCountInString(name) > MaxDisplayName {
		return invalid("display name", "at most %d characters", MaxDisplayName)
	}
	return nil
}

// ValidEmail accepts a bare address such as alice@example.com (empty: none). It must parse as an
// RFC 5322 address and be exactly what it parses to, so that neither a display name ("Alice
// <a@example.com>") nor a comment nor a second address rides along into a mail header.
func ValidEmail(email string) error {
	if email == "" {
		return nil
	}
	if hasControl(email) {
		return invalid("e-mail", "%q: no control characters", email)
	}
	if len(email) > MaxEmail {
		return invalid("e-mail", "at most %d characters", MaxEmail)
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email || strings.ContainsAny(email, " <>,;\"") {
		return invalid("e-mail", "%q is not an address such as alice@example.com", email)
	}
	return nil
}

// ValidGroup accepts a group name: 1 to 64 printable characters without spaces or commas.
// Remote-Groups joins a user's groups with commas, so a comma inside one would forge another.
func ValidGroup(g string) error {
	if g == "" || utf8.RuneCountInString(g) > MaxGroup || hasControl(g) {
		return invalid("group", "%q: 1 to %d characters, no spaces, commas or control characters", g, MaxGroup)
	}
	for _, r := range g {
		if r == ',' || unicode.IsSpace(r) {
			return invalid("group", "%q: 1 to %d characters, no spaces, commas or control characters", g, MaxGroup)
		}
	}
	return nil
}

// CleanGroups trims each group, drops empty ones and duplicates, and validates the rest.
func CleanGroups(groups []string) ([]string, error) {
	var out []string
	for _, g := range groups {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if err := ValidGroup(g); err != nil {
			return nil, err
		}
		if !contains(out, g) {
			out = append(out, g)
		}
	}
	if len(out) > MaxGroups {
		return nil, invalid("groups", "at most %d", MaxGroups)
	}
	return out, nil
}

// SplitGroups reads the comma-separated list the CLI's --groups flag takes.
func SplitGroups(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// NewUser is what adding a user takes; AddUser trims and validates every field.
type NewUser struct {
	Name        string
	DisplayName string
	Email       string
	Groups      []string
}

// clean trims the fields and validates them, the one validation of a new user for every front end.
func (in NewUser) clean() (NewUser, error) {
	out := NewUser{Name: strings.TrimSpace(in.Name), DisplayName: strings.TrimSpace(in.DisplayName), Email: strings.TrimSpace(in.Email)}
	if err := ValidUserName(out.Name); err != nil {
		return out, err
	}
	if err := ValidDisplayName(out.DisplayName); err != nil {
		return out, err
	}
	if err := ValidEmail(out.Email); err != nil {
		return out, err
	}
	groups, err := CleanGroups(in.Groups)
	if err != nil {
		return out, err
	}
	out.Groups = groups
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
