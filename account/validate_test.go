package account

import (
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/store"
)

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		what string
		fn   func(string) error
		ok   []string
		bad  []string
	}{
		{"user name", ValidUserName,
			[]string{"alice", "a.b_c-d@e", strings.Repeat("a", 64)},
			[]string{"", "a b", "ålice", "a\nb", "a\x1b[2J", "a\u202eb", strings.Repeat("a", 65)}},
		{"display name", ValidDisplayName,
			[]string{"", "Alice Liddell", "Zoë 李", strings.Repeat("é", 200)},
			[]string{"a\x1b]0;x\x07", "a\tb", "a\u200db", "a\u202eb", "\xff", strings.Repeat("é", 201)}},
		{"e-mail", ValidEmail,
			[]string{"", "alice@example.com", "a.b+c@sub.example.org"},
			[]string{"no-at", "Alice <a@example.com>", "<a@example.com>", "a@example.com, b@example.com", "a @example.com",
				"a@example.com\r\nBcc: x@example.net", "a\u202e@example.com", "a@b@c", strings.Repeat("a", 250) + "@example.com"}},
		{"group", ValidGroup,
			[]string{"admins", "team:ops", "grafana/editors", strings.Repeat("g", 64)},
			[]string{"", "two words", "a,b", "ops\x00", "adm\u200bins", "tab\there", strings.Repeat("g", 65)}},
	} {
		for _, v := range tc.ok {
			if err := tc.fn(v); err != nil {
				t.Errorf("%s %q refused: %v", tc.what, v, err)
			}
		}
		for _, v := range tc.bad {
			err := tc.fn(v)
			if !IsInvalid(err) {
				t.Errorf("%s %q accepted (%v)", tc.what, v, err)
				continue
			}
			for _, c := range err.Error() {
				if c < 0x20 || c == 0x7f || c == '\u202e' || c == '\u200b' || c == '\u200d' {
					t.Errorf("%s %q: the message carries control character %U: %q", tc.what, v, c, err.Error())
				}
			}
		}
	}
}

func TestCleanGroups(t *testing.T) {
	got, err := CleanGroups(SplitGroups(" staff, ops ,, staff "))
	if err != nil || strings.Join(got, "|") != "staff|ops" {
		t.Fatalf("CleanGroups = %q, %v", got, err)
	}
	if _, err := CleanGroups([]string{"ok", "not ok"}); !IsInvalid(err) {
		t.Fatalf("a bad group among good ones: %v", err)
	}
}

func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		s, tok int64
		tokens bool
		want   string
	}{
		{3, 2, true, "Ended 3 sessions and revoked 2 API tokens"},
		{1, 1, true, "Ended 1 session and revoked 1 API token"},
		{0, 5, false, "Ended 0 sessions"},
	} {
		if got := Summary(storeRevoked(tc.s, tc.tok), tc.tokens); got != tc.want {
			t.Errorf("Summary = %q, want %q", got, tc.want)
		}
	}
}

func storeRevoked(sessions, tokens int64) store.Revoked {
	return store.Revoked{Sessions: sessions, Tokens: tokens}
}
