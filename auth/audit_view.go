package auth

import (
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/latchkeyhq/latchkey/account"
	"github.com/latchkeyhq/latchkey/store"
)

// The audit log page (issue 20): readable event names, who did it and to whom in their own
// columns, passkeys by name where they still exist, filters by user, event type and date range.

// eventNames are the readable names of every audit event the code writes, in English: catalogue
// keys, translated where the page shows them. A test greps the sources for event names and fails
// on one missing here.
var eventNames = map[string]string{
	// sign-in and sign-out
	"login":                         N("Signed in"),
	"login_failed":                  N("Sign-in refused"),
	"domain_continue":               N("Continued to another domain"),
	"domain_continue_refused":       N("Continue to another domain refused"),
	"logout":                        N("Signed out"),
	"session_replaced":              N("Session replaced by a new sign-in"),
	"step_up_refused":               N("Passkey check refused"),
	"possible_cloned_authenticator": N("Possibly cloned passkey"),
	"backup_flags_changed":          N("Passkey backup state changed"),
	"restricted_session_refused":    N("Recovery session refused"),
	// passkeys
	"passkey_added":          N("Passkey added"),
	"passkey_add_failed":     N("Passkey not added"),
	"passkey_renamed":        N("Passkey renamed"),
	"passkey_remove_refused": N("Last passkey kept"),
	// recovery
	"recovery_codes_created":     N("Recovery codes made"),
	"recovery_codes_regenerated": N("Recovery codes replaced"),
	"recovery_code_used":         N("Recovery code used"),
	"recovery_code_failed":       N("Recovery code refused"),
	"recovery_link_sent":         N("Recovery link sent"),
	"recovery_link_failed":       N("Recovery link not sent"),
	"recovery_link_used":         N("Recovery link used"),
	"recovery_link_refused":      N("Recovery link refused"),
	// users, sessions and tokens (package account)
	account.EventUserAdded:       N("User added"),
	account.EventUserInvited:     N("Enrolment link made"),
	account.EventLinkCreated:     N("Enrolment link created"),
	account.EventUserDisabled:    N("User disabled"),
	account.EventUserEnabled:     N("User enabled"),
	account.EventUserRemoved:     N("User removed"),
	account.EventPasskeyRemoved:  N("Passkey removed"),
	account.EventSessionRevoked:  N("Session ended"),
	account.EventSessionsRevoked: N("Signed out everywhere"),
	account.EventEmailChanged:    N("E-mail address changed"),
	"token_created":              N("API token created"),
	"token_revoked":              N("API token revoked"),
	// single sign-on to apps (package oidc)
	"oidc_client_added":              N("App added"),
	"oidc_client_removed":            N("App removed"),
	"oidc_client_secret_rotated":     N("App secret replaced"),
	"oidc_client_auth_failed":        N("App credentials refused"),
	"oidc_authorized":                N("Signed in to an app"),
	"oidc_denied":                    N("App sign-in refused"),
	"oidc_consent":                   N("App access allowed"),
	"oidc_consent_denied":            N("App access declined"),
	"oidc_grant":                     N("App tokens issued"),
	"oidc_refresh":                   N("App tokens refreshed"),
	"oidc_refresh_reused":            N("App refresh token reused"),
	"oidc_code_reused":               N("App sign-in code reused"),
	"oidc_revoke":                    N("App token revoked"),
	"oidc_logout":                    N("Signed out of an app"),
	"oidc_backchannel_logout":        N("App told of a sign-out"),
	"oidc_backchannel_logout_failed": N("App not told of a sign-out"),
}

// EventName is an audit event's readable name ("Passkey added"), the English catalogue key; an
// event without one is shown as written.
func EventName(event string) string {
	if n, ok := eventNames[event]; ok {
		return n
	}
	return event
}

// auditRow is an audit event as the page shows it.
type auditRow struct {
	store.Event
	Name   string // readable event name (English: the page translates it)
	Actor  string // who did it
	Target string // whom it concerns, when not the actor
	Detail string // the rest of the detail, passkeys named
}

// byOthers are events about a user that someone else caused, without an actor in the detail.
var byOthers = map[string]struct{}{account.EventLinkCreated: {}}

// credentialRefs finds the passkey references audit rows carry ("credential REF", "passkey=REF").
// A reference is 8 base64url characters, which may end in "-" or "_" (so no \b after it).
var credentialRefs = regexp.MustCompile(`(credential |passkey=)([A-Za-z0-9_-]{8})([^A-Za-z0-9_-]|$)`)

// makeAuditRow splits an event's detail into actor, target and the rest. Account operations
// write "actor=NAME target=NAME ..."; the other events are the row's user acting themselves.
func makeAuditRow(e store.Event, userName string, passkeys map[string]string) auditRow {
	row := auditRow{Event: e, Name: EventName(e.Event), Actor: userName, Detail: e.Detail}
	if _, ok := byOthers[e.Event]; ok {
		// Written for the user by someone the row does not name (the row before it does).
		row.Actor, row.Target = "", userName
	}
	if rest, ok := strings.CutPrefix(e.Detail, "actor="); ok {
		actor, rest, _ := strings.Cut(rest, " ")
		row.Actor = actor
		if t, ok := strings.CutPrefix(rest, "target="); ok {
			target, more, _ := strings.Cut(t, " ")
			if target != actor {
				row.Target = target
			}
			rest = more
		}
		row.Detail = rest
	}
	row.Detail = credentialRefs.ReplaceAllStringFunc(row.Detail, func(m string) string {
		sub := credentialRefs.FindStringSubmatch(m)
		if name, ok := passkeys[sub[2]]; ok {
			return "passkey “" + name + "”" + sub[3]
		}
		return "passkey " + sub[2] + " (removed)" + sub[3]
	})
	return row
}

// eventOption is an entry of the event type dropdown.
type eventOption struct{ Value, Name string }

// eventOptions lists every event type by its name in l's language, in alphabetical order.
func eventOptions(l *locale) []eventOption {
	out := make([]eventOption, 0, len(eventNames))
	for ev, name := range eventNames {
		out = append(out, eventOption{ev, l.text(name)})
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := sortKey(out[i].Name), sortKey(out[j].Name); a != b {
			return a < b
		}
		return out[i].Value < out[j].Value
	})
	return out
}

// sortKey folds case and accents, so that "État…" sorts with the E's: the shipped languages
// write the Latin alphabet with accents, which needs no collation tables in the binary.
func sortKey(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// parseDay reads a date input's value (YYYY-MM-DD, a UTC day).
func parseDay(s string) (time.Time, bool) {
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	return t, err == nil
}

func (s *Service) adminAuditPage(w http.ResponseWriter, r *http.Request) error {
	id, ok, err := s.adminPage(w, r)
	if !ok {
		return err
	}
	ctx := r.Context()
	q := r.URL.Query()
	userName, event := strings.TrimSpace(q.Get("user")), strings.TrimSpace(q.Get("event"))
	from, to := strings.TrimSpace(q.Get("from")), strings.TrimSpace(q.Get("to"))
	page, _ := strconv.Atoi(q.Get("page"))
	if page < 1 || page > 100000 {
		page = 1
	}
	users, err := s.store.Users(ctx)
	if err != nil {
		return err
	}
	names := make(map[string]string, len(users))
	passkeys := map[string]string{}
	filter := store.AuditFilter{Event: event, Limit: auditPageSize + 1, Offset: (page - 1) * auditPageSize}
	if t, ok := parseDay(from); ok {
		filter.Since = t
	} else {
		from = ""
	}
	if t, ok := parseDay(to); ok {
		filter.Until = t.AddDate(0, 0, 1) // the whole "to" day
	} else {
		to = ""
	}
	for _, u := range users {
		names[u.ID] = u.Name
		if strings.EqualFold(u.Name, userName) {
			filter.UserID = u.ID
		}
		creds, err := s.store.Credentials(ctx, u.ID)
		if err != nil {
			return err
		}
		for _, c := range creds {
			passkeys[credRef(c.ID)] = c.Name
		}
	}
	var events []store.Event
	if userName == "" || filter.UserID != "" {
		if events, err = s.store.AuditEvents(ctx, filter); err != nil {
			return err
		}
	}
	more := len(events) > auditPageSize
	if more {
		events = events[:auditPageSize]
	}
	l := s.lang(r)
	rows := make([]auditRow, 0, len(events))
	for _, e := range events {
		row := makeAuditRow(e, names[e.UserID], passkeys)
		row.Name = l.text(row.Name)
		rows = append(rows, row)
	}
	link := func(p int) string {
		v := url.Values{}
		for k, val := range map[string]string{"user": userName, "event": event, "from": from, "to": to} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("page", strconv.Itoa(p))
		return "/.latchkey/admin/audit?" + v.Encode()
	}
	d := struct {
		Events           []auditRow
		User, Event      string
		From, To         string
		Options          []eventOption
		Page             int
		PrevURL, NextURL string
	}{Events: rows, User: userName, Event: event, From: from, To: to, Options: eventOptions(l), Page: page}
	if page > 1 {
		d.PrevURL = link(page - 1)
	}
	if more {
		d.NextURL = link(page + 1)
	}
	s.render(w, r, http.StatusOK, "admin-audit", pageData{Title: N("Admin · Audit log"), User: id.User, Data: d})
	return nil
}
