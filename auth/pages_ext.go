package auth

import "net/http"

// Page renders one of the embedded page templates with the common page data (title, the signed-in
// user), for packages that serve their own pages under /.latchkey/, such as the OpenID Provider's
// consent page (issue 22). Security headers a caller already set (a wider form-action, say) are
// kept; otherwise the usual ones are set.
//
// The title is a catalogue key (mark its literal with N) whose verbs titleArgs fill after
// translation: Page(w, r, 200, "oidc_consent", N("Allow %s?"), v, app.Name).
func (s *Service) Page(w http.ResponseWriter, r *http.Request, status int, name, title string, data any, titleArgs ...any) {
	if w.Header().Get("Content-Security-Policy") == "" {
		SecurityHeaders(w.Header())
	}
	d := pageData{Title: title, TitleArgs: titleArgs, Data: data}
	if id, ok := s.Authenticate(r); ok && id.SessionID != "" && !id.Restricted() {
		d.User = id.User
	}
	s.render(w, r, status, name, d)
}

// Translations returns a shipped language's translations of the English messages (key → text;
// plural messages give their "other" form), for tools and tests that check a rendered page for
// English left untranslated. English itself, or an unknown code, gives an empty map.
func Translations(code string) map[string]string {
	out := map[string]string{}
	for _, m := range catalogue[code] {
		for k, v := range m {
			out[k] = v
		}
	}
	for _, m := range plurals[code] {
		for k, f := range m {
			if code != "en" {
				out[k] = f["other"]
			}
		}
	}
	return out
}
