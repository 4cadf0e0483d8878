package session

import (
	"strings"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// Session methods: how a session was made; MethodToken marks an API token.
const (
	MethodPasskey      = store.MethodPasskey
	MethodRecoveryCode = store.MethodRecoveryCode
	MethodMagicLink    = store.MethodMagicLink
	MethodToken        = "token"
)

// User is the view's immutable copy of a user, shared by every check; GroupsHeader is the
// precomputed Remote-Groups value.
type User struct {
	ID           string
	Name         string
	DisplayName  string
	Email        string
	Groups       []string
	GroupsHeader string
	Disabled     bool

	// headers holds the identity header values (see HeaderValues), built once with the user so
	// that a check's answer slices them instead of allocating them.
	headers *[4]string
}

func newUser(u store.User) *User {
	nu := &User{ID: u.ID, Name: u.Name, DisplayName: u.DisplayName, Email: u.Email,
		Groups: u.Groups, GroupsHeader: strings.Join(u.Groups, ","), Disabled: u.Disabled}
	nu.headers = &[4]string{nu.Name, nu.Email, nu.DisplayName, nu.GroupsHeader}
	return nu
}

// HeaderValues returns the user's name, e-mail, display name and groups header, in that order,
// in an array shared by every check of the user: callers may slice it (with a capacity bound,
// so that an append copies) but must never write to it. A User not made by the view (a literal
// in a test) gets a fresh array.
func (u *User) HeaderValues() *[4]string {
	if u.headers != nil {
		return u.headers
	}
	return &[4]string{u.Name, u.Email, u.DisplayName, u.GroupsHeader}
}

// Identity is who a request belongs to, as a check found it.
type Identity struct {
	User      *User
	SessionID string // empty for API tokens
	Method    string // passkey | recovery_code | magic_link | token
	// VerifiedAt is the last passkey verification of the session (step-up).
	VerifiedAt time.Time
	// BackupEligible and AAGUID describe the passkey that last verified the session.
	BackupEligible bool
	AAGUID         string
	// Domain is the cookie domain the session was minted for ("" for the first configured
	// domain, and for API tokens). A check on a host of another domain must refuse the session:
	// its cookie was carried there by someone other than the browser (issue 23).
	Domain string
	// TokenHosts limits an API token to these hosts (canonical; empty for sessions).
	TokenHosts []string
	// Stale is set on a refused check that the view could not answer: it has not confirmed
	// itself with the store within MaxStaleness. Adapters answer 503 with Retry-After.
	Stale bool

	entry *entry // for Touch
}

// Restricted reports whether the session was made by a recovery method and may only enrol a passkey.
func (id Identity) Restricted() bool {
	return id.Method == MethodRecoveryCode || id.Method == MethodMagicLink
}

// Result is the outcome of a check.
type Result uint8

// Check results.
const (
	Refused Result = iota // no such live session or token: 401 or a login redirect
	Allowed               // the Identity is valid
	Stale                 // the view is too old to answer: fail closed with 503
)
