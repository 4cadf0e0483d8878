package auth

import (
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/latchkeyhq/latchkey/account"
	"github.com/latchkeyhq/latchkey/store"
)

// The audit log page (issue 20): readable event names, who did it and to whom in their own
// columns, passkeys by name where they still exist, filters by user, event type and date range.

// eventNames are the readable names of every audit event the code writes. A test greps the
// sources for event names and fails on one missing here.
var eventNames = map[string]string{
	// sign-in and sign-out
	"login":                         "Signed in",
	"login_failed":                  "Sign-in refused",
	"domain_continue":               "Continued to another domain",
	"domain_continue_refused":       "Continue to another domain refused",
	"logout":                        "Signed out",
	"session_replaced":              "Session replaced by a new sign-in",
	"step_up_refused":               "Passkey check refused",
	"possible_cloned_authenticator": "Possibly cloned passkey",
	"backup_flags_changed":          "Passkey backup state changed",
	"restricted_session_refused":    "Recovery session refused",
	// passkeys
	"passkey_added":          "Passkey added",
	"passkey_add_failed":     "Passkey not added",
	"passkey_renamed":        "Passkey renamed",
	"passkey_remove_refused": "Last passkey kept",
	// recovery
	"recovery_codes_created":     "Recovery codes made",
	"recovery_codes_regenerated": "Recovery codes replaced",
	"recovery_code_used":         "Recovery code used",
	"recovery_code_failed":       "Recovery code refused",
	"recovery_link_sent":         "Recovery link sent",
	"recovery_link_failed":       "Recovery link not sent",
	"recovery_link_used":         "Recovery link used",
	"recovery_link_refused":      "Recovery link refused",
	// users, sessions and tokens (package account)
	account.EventUserAdded:       "User added",
	account.EventUserInvited:     "Enrolment link made",
	account.EventLinkCreated:     "Enrolment link created",
	account.EventUserDisabled:    "User disabled",
	account.EventUserEnabled:     "User enabled",
	account.EventUserRemoved:     "User removed",
	account.EventPasskeyRemoved:  "Passkey removed",
	account.EventSessionRevoked:  "Session ended",
	account.EventSessionsRevoked: "Signed out everywhere",
	account.EventEmailChanged:    "E-mail address changed",
	"token_created":              "API token created",
	"token_revoked":              "API token revoked",
	// single sign-on to apps (package oidc)
	"oidc_client_added":              "App added",
	"oidc_client_removed":            "App removed",
	"oidc_client_secret_rotated":     "App secret replaced",
	"oidc_client_auth_failed":        "App credentials refused",
	"oidc_authorized":                "Signed in to an app",
	"oidc_denied":                    "App sign-in refused",
	"oidc_consent":                   "App access allowed",
	"oidc_consent_denied":            "App access declined",
	"oidc_grant":                     "App tokens issued",
	"oidc_refresh":                   "App tokens refreshed",
	"oidc_refresh_reused":            "App refresh token reused",
	"oidc_code_reused":               "App sign-in code reused",
	"oidc_revoke":                    "App token revoked",
	"oidc_logout":                    "Signed out of an app",
	"oidc_backchannel_logout":        "App told of a sign-out",
	"oidc_backchannel_logout_failed": "App not told of a sign-out",
}

// EventName is an audit event's readable name ("Passkey added"); an event without one is shown
// as written.
func EventName(event string) string {
	if n, ok := eventNames[event]; ok {
		return n
	}
	return event
}

// auditRow is an audit event as the page shows it.
type auditRow struct {
	store.Event
	Name   string // readable event name
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

func eventOptions() []eventOption {
	seen := map[string]bool{}
	var out []eventOption
	for ev, name := range eventNames {
		if !seen[ev] {
			seen[ev] = true
			out = append(out, eventOption{ev, name})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || out[i].Name == out[j].Name && out[i].Value < out[j].Value
	})
	return out
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
	rows := make([]auditRow, 0, len(events))
	for _, e := range events {
		rows = append(rows, makeAuditRow(e, names[e.UserID], passkeys))
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
	}{Events: rows, User: userName, Event: event, From: from, To: to, Options: eventOptions(), Page: page}
	if page > 1 {
		d.PrevURL = link(page - 1)
	}
	if more {
		d.NextURL = link(page + 1)
	}
	s.render(w, r, http.StatusOK, "admin-audit", pageData{Title: "Admin · Audit log", User: id.User, Data: d})
	return nil
}
