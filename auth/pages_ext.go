package auth

import "net/http"

// Page renders one of the embedded page templates with the common page data (title, the signed-in
// user), for packages that serve their own pages under /.latchkey/, such as the OpenID Provider's
// consent page (issue 22). Security headers a caller already set (a wider form-action, say) are
// kept; otherwise the usual ones are set.
func (s *Service) Page(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	if w.Header().Get("Content-Security-Policy") == "" {
		SecurityHeaders(w.Header())
	}
	d := pageData{Title: title, Data: data}
	if id, ok := s.Authenticate(r); ok && id.SessionID != "" && !id.Restricted() {
		d.User = id.User
	}
	s.render(w, r, status, name, d)
}
