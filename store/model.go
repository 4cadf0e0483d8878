package store

import "time"

// User is a person who may sign in. ID is a UUID v4 string; its 16 raw bytes are the WebAuthn
// user handle.
type User struct {
	ID          string
	Name        string
	DisplayName string
	Email       string
	Groups      []string
	Disabled    bool
	CreatedAt   time.Time
}

// Credential is a passkey's public half. Nothing in it can sign anyone in.
type Credential struct {
	ID                []byte
	UserID            string
	Name              string
	PublicKey         []byte // COSE
	SignCount         uint32
	AAGUID            []byte
	Transports        []string
	BackupEligible    bool
	BackupState       bool
	AttestationFormat string
	AttestationType   string
	CreatedAt         time.Time
	LastUsedAt        time.Time
}

// Invite purposes.
const (
	PurposeEnrol   = "enrol"
	PurposeRecover = "recover"
)

// Invite is a one-time link: an enrolment link made by an admin, or a recovery magic link.
type Invite struct {
	ID        int64
	TokenHash []byte
	UserID    string
	Purpose   string
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// RecoveryCode is the hash of one one-time recovery code.
type RecoveryCode struct {
	ID     int64
	UserID string
	Hash   []byte
	UsedAt time.Time
}

// Ceremony is the server-side state of a WebAuthn ceremony in flight.
type Ceremony struct {
	ID        string
	Kind      string
	Data      []byte
	ExpiresAt time.Time
}

// Session methods: how a session was made.
const (
	MethodPasskey      = "passkey"
	MethodRecoveryCode = "recovery_code"
	MethodMagicLink    = "magic_link"
)

// Session is a signed-in browser.
type Session struct {
	ID             string
	UserID         string
	CredentialID   []byte
	Method         string
	CreatedAt      time.Time
	VerifiedAt     time.Time // last passkey verification
	LastSeenAt     time.Time
	ExpiresAt      time.Time
	RevokedAt      time.Time
	UserAgent      string
	IP             string
	BackupEligible bool   // of the passkey that made or last verified the session
	AAGUID         []byte // of that passkey
	// Domain is the cookie domain the session's cookie was minted for (issue 23); "" is the
	// first configured domain (sessions made before several domains existed).
	Domain string
}

// Token is a scoped API token for non-browser clients; only its hash is kept.
type Token struct {
	ID         string
	UserID     string
	Name       string
	Hash       []byte
	Hosts      []string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
}

// Event is an audit record. Detail never holds a secret.
type Event struct {
	ID     int64
	At     time.Time
	UserID string
	Event  string
	Detail string
	IP     string
}

// Snapshot is everything the forward-auth check needs, loaded at once so that the hot path reads
// no database.
type Snapshot struct {
	Revision int64
	Users    []User
	Sessions []Session // not revoked, not expired
	Tokens   []Token   // not revoked, not expired
}
