package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/latchkeyhq/latchkey/store"
)

// Account self-service (issue 6): rename and remove passkeys, make new recovery codes, end
// sessions. Every handler takes the user from the session cookie and from nothing else in the
// request (HOSTILE PUB-26b), and needs a full session: a recovery session may only enrol a
// passkey, and anything else it tries is refused with 403 and audited.

// maxPasskeyName bounds a passkey's label (in characters).
const maxPasskeyName = 64

// accountOwner returns the identity of a request that may manage its own account.
func (s *Service) accountOwner(r *http.Request) (Identity, error) {
	id, ok := s.Authenticate(r)
	if !ok || id.SessionID == "" {
		// No session, or an API token: account management is for people at a browser.
		return id, fail(http.StatusUnauthorized, N("sign in first"), nil)
	}
	if id.Restricted() {
		s.audit(r.Context(), r, id.User.ID, "restricted_session_refused", r.Method+" "+r.URL.Path)
		return id, fail(http.StatusForbidden, N("create a new passkey first; until then this session can do nothing else"), nil)
	}
	return id, nil
}

// decodeCredentialID reads a passkey ID as the account page and the CLI print it (base64url).
func decodeCredentialID(s string) ([]byte, error) {
	id, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(id) == 0 || len(id) > 1023 {
		return nil, fail(http.StatusBadRequest, N("unknown passkey"), err)
	}
	return id, nil
}

// cleanPasskeyName trims a label and refuses control characters (which could rewrite an admin's
// terminal when the CLI prints the name) and overlong or empty names.
func cleanPasskeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxPasskeyName {
		return "", failf(http.StatusBadRequest, N("a passkey name has 1 to %d characters"), []any{maxPasskeyName}, nil)
	}
	for _, c := range name {
		if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) {
			return "", fail(http.StatusBadRequest, N("a passkey name cannot hold control characters"), nil)
		}
	}
	return name, nil
}

func (s *Service) renamePasskey(w http.ResponseWriter, r *http.Request) error {
	id, err := s.accountOwner(r)
	if err != nil {
		return err
	}
	var body struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	credID, err := decodeCredentialID(body.ID)
	if err != nil {
		return err
	}
	name, err := cleanPasskeyName(body.Name)
	if err != nil {
		return err
	}
	// The store matches the passkey and the user together: another user's passkey is "unknown".
	if err := s.store.RenameCredential(r.Context(), id.User.ID, credID, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fail(http.StatusNotFound, N("unknown passkey"), err)
		}
		return err
	}
	s.audit(r.Context(), r, id.User.ID, "passkey_renamed", "credential "+credRef(credID))
	writeJSON(w, http.StatusOK, map[string]string{"id": body.ID, "name": name})
	return nil
}

// ownTarget is the signed-in user as a store row, for the account operations.
func (s *Service) ownTarget(r *http.Request, id Identity) (store.User, error) {
	u, err := s.store.UserByID(r.Context(), id.User.ID)
	if err != nil {
		return u, fail(http.StatusUnauthorized, N("sign in first"), err)
	}
	return u, nil
}

// removePasskey needs a fresh passkey verification: a stolen cookie must not be able to take
// away the owner's passkeys (issue 16).
func (s *Service) removePasskey(w http.ResponseWriter, r *http.Request) error {
	id, err := s.freshOwner(r)
	if err != nil {
		return err
	}
	var body struct {
		ID string `json:"id"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	credID, err := decodeCredentialID(body.ID)
	if err != nil {
		return err
	}
	ctx := r.Context()
	u, err := s.ownTarget(r, id)
	if err != nil {
		return err
	}
	switch err := s.accounts.RemovePasskey(ctx, s.actor(r, id), u, credID); {
	case errors.Is(err, store.ErrNotFound):
		return fail(http.StatusNotFound, N("unknown passkey"), err)
	case errors.Is(err, store.ErrLastPasskey):
		s.audit(ctx, r, id.User.ID, "passkey_remove_refused", "last passkey, no unused recovery code")
		return accountError(err)
	case err != nil:
		return accountError(err)
	}
	// Removing a passkey ends the sessions it made, at once, in this process too.
	s.Refresh(ctx)
	out := map[string]any{"removed": body.ID}
	if sig, err := s.signal(ctx, u); err == nil {
		out["signal"] = sig // the password manager drops the removed passkey too
	}
	if _, still := s.Authenticate(r); !still {
		// This browser signed in with the passkey just removed: its session is over as well.
		s.clearSessionCookie(w, r)
		out["redirect"] = s.loginURL(r)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// regenerateCodes needs a fresh passkey verification: new codes are a new way into the account.
func (s *Service) regenerateCodes(w http.ResponseWriter, r *http.Request) error {
	id, err := s.freshOwner(r)
	if err != nil {
		return err
	}
	if r.ContentLength != 0 {
		var body struct{}
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		return err
	}
	// The old codes stop working in the same transaction that stores the new ones.
	if err := s.store.ReplaceRecoveryCodes(r.Context(), id.User.ID, hashes); err != nil {
		return err
	}
	s.audit(r.Context(), r, id.User.ID, "recovery_codes_regenerated", fmt.Sprintf("%d codes", len(codes)))
	writeJSON(w, http.StatusOK, map[string]any{"recovery_codes": codes})
	return nil
}

// setEmail changes the account's e-mail address, where recovery links go; it needs a fresh
// passkey verification, or a stolen cookie could point recovery at the thief's mailbox.
func (s *Service) setEmail(w http.ResponseWriter, r *http.Request) error {
	id, err := s.freshOwner(r)
	if err != nil {
		return err
	}
	var body struct {
		Email string `json:"email"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	u, err := s.ownTarget(r, id)
	if err != nil {
		return err
	}
	email, err := s.accounts.SetEmail(r.Context(), s.actor(r, id), u, body.Email)
	if err != nil {
		return accountError(err)
	}
	// Remote-Email comes from the in-memory view.
	s.Refresh(r.Context())
	writeJSON(w, http.StatusOK, map[string]string{"email": email})
	return nil
}

func (s *Service) revokeSession(w http.ResponseWriter, r *http.Request) error {
	id, err := s.accountOwner(r)
	if err != nil {
		return err
	}
	var body struct {
		ID string `json:"id"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if _, ok := decodeID(body.ID); !ok {
		return fail(http.StatusNotFound, N("unknown session"), nil)
	}
	ctx := r.Context()
	u, err := s.ownTarget(r, id)
	if err != nil {
		return err
	}
	current := body.ID == id.SessionID
	// Scoped to the signed-in user: another user's session ID is "unknown", never revoked.
	if err := s.accounts.RevokeSession(ctx, s.actor(r, id), u, body.ID, current); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fail(http.StatusNotFound, N("unknown session"), err)
		}
		return err
	}
	s.Refresh(ctx)
	out := map[string]string{}
	if current {
		s.clearSessionCookie(w, r)
		out["redirect"] = s.loginURL(r)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revokeAllSessions is "sign out everywhere": every session of the user ends and, with
// {"tokens": true}, every API token is revoked too. The page's checkbox for it is checked by
// default; the API, like the CLI's --tokens and the console's, revokes tokens only when asked.
// Ending access needs no step-up: it only takes ways in away.
func (s *Service) revokeAllSessions(w http.ResponseWriter, r *http.Request) error {
	id, err := s.accountOwner(r)
	if err != nil {
		return err
	}
	var body struct {
		Tokens bool `json:"tokens"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	tokens := body.Tokens
	ctx := r.Context()
	u, err := s.ownTarget(r, id)
	if err != nil {
		return err
	}
	rv, err := s.accounts.RevokeSessions(ctx, s.actor(r, id), u, tokens)
	if err != nil {
		return err
	}
	s.Refresh(ctx)
	s.clearSessionCookie(w, r)
	writeJSON(w, http.StatusOK, map[string]any{"revoked": rv.Sessions, "tokens_revoked": rv.Tokens,
		"message": revokedSummary(s.lang(r), rv, tokens), "redirect": s.loginURL(r)})
	return nil
}

func (s *Service) loginURL(r *http.Request) string { return s.domainOf(r).base() + "/.latchkey/login" }

// userAgentBrowsers and userAgentPlatforms name what a User-Agent header says, in the order they
// must be tried: Edge, Opera and Samsung Internet also claim to be Chrome, Chrome claims to be
// Safari, and Android claims to be Linux. The first token found wins.
var (
	userAgentBrowsers = []struct{ token, name string }{
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"},
		{"OPR/", "Opera"}, {"OPiOS/", "Opera"},
		{"SamsungBrowser/", "Samsung Internet"},
		{"Vivaldi/", "Vivaldi"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"CriOS/", "Chrome"}, {"HeadlessChrome/", "Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
		{"Safari/", "Safari"},
	}
	userAgentPlatforms = []struct{ token, name string }{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"iPod", "iPod"},
		{"Android", "Android"},
		{"CrOS", "ChromeOS"},
		{"Windows", "Windows"},
		{"Macintosh", "macOS"}, {"Mac OS X", "macOS"},
		{"Linux", "Linux"}, {"X11", "Linux"}, {"FreeBSD", "FreeBSD"}, {"OpenBSD", "OpenBSD"},
	}
	// userAgentTools are programs that name themselves first (curl/8.5.0).
	userAgentTools = []struct{ token, name string }{
		{"curl/", "curl"}, {"Wget/", "Wget"}, {"python-requests/", "Python requests"},
		{"Python-urllib/", "Python urllib"}, {"Go-http-client/", "Go program"}, {"okhttp/", "OkHttp"},
		{"PostmanRuntime/", "Postman"}, {"HTTPie/", "HTTPie"}, {"node-fetch", "Node.js"},
	}
)

// DeviceSummary names the browser and platform a session was made from ("Chrome on Linux",
// "Safari on iPhone", "curl") from its User-Agent header, for the session lists. It is a hint for
// people recognising their own devices, never a security decision: the header is the client's
// word. An unknown program is named by its first product token.
func DeviceSummary(ua string) string { return describeDevice(ua, fmt.Sprintf) }

// describeDevice is DeviceSummary with its words in a language (tr is a locale's text).
func describeDevice(ua string, tr func(string, ...any) string) string {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return tr(N("Unknown device"))
	}
	for _, t := range userAgentTools {
		if strings.HasPrefix(ua, t.token) {
			return t.name
		}
	}
	if !strings.HasPrefix(ua, "Mozilla/") {
		// A program's own name: its first product token, cut short and printable only.
		name, _, _ := strings.Cut(ua, "/")
		name, _, _ = strings.Cut(name, " ")
		name = strings.Map(func(r rune) rune {
			if unicode.IsPrint(r) {
				return r
			}
			return -1
		}, name)
		if n := []rune(name); len(n) > 32 {
			name = string(n[:32]) + "…"
		}
		if name == "" {
			return tr(N("Unknown device"))
		}
		return name
	}
	browser, platform := "", ""
	for _, b := range userAgentBrowsers {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	for _, p := range userAgentPlatforms {
		if strings.Contains(ua, p.token) {
			platform = p.name
			break
		}
	}
	if browser == "" && (platform == "iPhone" || platform == "iPad") {
		// Apps that show web pages on iOS (mail, chat) use WebKit without a Safari token.
		browser = tr(N("In-app browser"))
	}
	switch {
	case browser != "" && platform != "":
		return tr(N("%s on %s"), browser, platform)
	case browser != "":
		return browser
	case platform != "":
		return tr(N("Browser on %s"), platform)
	}
	return tr(N("Unknown browser"))
}
