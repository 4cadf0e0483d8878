package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/account"
	"github.com/latchkeyhq/latchkey/store"
)

const (
	kindRegister = "register"
	kindLogin    = "login"
)

// ceremonyState is what the server keeps between begin and finish.
type ceremonyState struct {
	Session   webauthn.SessionData `json:"session"`
	UserID    string               `json:"user_id,omitempty"`
	InviteID  int64                `json:"invite_id,omitempty"`
	SessionID string               `json:"session_id,omitempty"` // the session that began it, if any
	StepUp    bool                 `json:"step_up,omitempty"`
}

// waUser adapts a store user and its passkeys to go-webauthn.
type waUser struct {
	handle []byte
	user   store.User
	creds  []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return u.handle }
func (u *waUser) WebAuthnName() string                       { return u.user.Name }
func (u *waUser) WebAuthnDisplayName() string                { return displayName(u.user) }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func displayName(u store.User) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.Name
}

// userHandle is the WebAuthn user handle: the 16 bytes of the user's UUID.
func userHandle(id string) []byte {
	u, err := uuid.Parse(id)
	if err != nil {
		return []byte(id)
	}
	return u[:]
}

func toWA(c store.Credential) webauthn.Credential {
	transports := make([]protocol.AuthenticatorTransport, len(c.Transports))
	for i, t := range c.Transports {
		transports[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID:                c.ID,
		PublicKey:         c.PublicKey,
		AttestationType:   c.AttestationType,
		AttestationFormat: c.AttestationFormat,
		Transport:         transports,
		Flags: webauthn.CredentialFlags{UserPresent: true, UserVerified: true,
			BackupEligible: c.BackupEligible, BackupState: c.BackupState},
		Authenticator: webauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount},
	}
}

func (s *Service) loadWAUser(ctx context.Context, u store.User) (*waUser, []store.Credential, error) {
	creds, err := s.store.Credentials(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	wu := &waUser{handle: userHandle(u.ID), user: u}
	for _, c := range creds {
		wu.creds = append(wu.creds, toWA(c))
	}
	return wu, creds, nil
}

// ceremonyRoom keeps the ceremony table (WebAuthn ceremonies and continue tokens) bounded.
func (s *Service) ceremonyRoom(ctx context.Context) error {
	n, err := s.store.CountCeremonies(ctx)
	if err != nil {
		return err
	}
	if n >= maxCeremonies {
		// The table is bounded: expired rows are swept every minute, and rate limits keep any one
		// client far below this; reaching it means a flood from many addresses. Refusing new
		// ceremonies then would lock every legitimate user out for the flood's lifetime, so the
		// oldest rows give way instead: the flood has to outpace a person's few seconds at the
		// authenticator, from more addresses than the per-address limits allow.
		if _, err := s.store.Sweep(ctx); err != nil {
			return err
		}
		if n, err = s.store.CountCeremonies(ctx); err != nil {
			return err
		}
		if n >= maxCeremonies {
			s.metrics.RateLimited("ceremonies")
			s.log.Warn("ceremony table full; dropping the oldest ceremonies", "in_flight", n)
			if err := s.store.DropOldestCeremonies(ctx, int(n-maxCeremonies)+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// beginCeremony stores the state server-side and binds it to this browser with a short-lived,
// signed cookie holding only a random ceremony ID.
func (s *Service) beginCeremony(ctx context.Context, w http.ResponseWriter, kind string, st ceremonyState) error {
	if err := s.ceremonyRoom(ctx); err != nil {
		return err
	}
	id, err := newSessionID()
	if err != nil {
		return err
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("auth: encode ceremony: %w", err)
	}
	now := s.now()
	if err := s.store.PutCeremony(ctx, store.Ceremony{ID: encodeID(id), Kind: kind, Data: data, ExpiresAt: now.Add(CeremonyTTL)}); err != nil {
		return err
	}
	value, err := s.ceremony.encode(id, now)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: s.ceremonyC, Value: value, Path: "/", MaxAge: int(CeremonyTTL / time.Second),
		Secure: s.secure(), HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return nil
}

var errNoCeremony = errors.New("no ceremony in progress for this browser")

// takeCeremony consumes the ceremony bound to this browser. It is single use: the row is deleted
// atomically, so two finishes racing on one challenge get it once at most.
func (s *Service) takeCeremony(w http.ResponseWriter, r *http.Request, kind string) (ceremonyState, error) {
	var st ceremonyState
	http.SetCookie(w, &http.Cookie{Name: s.ceremonyC, Value: "", Path: "/", MaxAge: -1, Secure: s.secure(),
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	value, ok := cookieValue(r, s.ceremonyC)
	if !ok {
		return st, fail(http.StatusBadRequest, N("no sign-in in progress; start again"), errNoCeremony)
	}
	id, err := s.ceremony.decode(value)
	if err != nil {
		return st, fail(http.StatusBadRequest, N("no sign-in in progress; start again"), err)
	}
	c, err := s.store.TakeCeremony(r.Context(), encodeID(id), kind)
	if errors.Is(err, store.ErrNotFound) {
		return st, fail(http.StatusBadRequest, N("no sign-in in progress; start again"), err)
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(c.Data, &st); err != nil {
		return st, fmt.Errorf("auth: decode ceremony: %w", err)
	}
	return st, nil
}

var credentialParameters = []protocol.CredentialParameter{
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgEdDSA},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgRS256},
}

// registrationTarget decides whose passkey a registration makes: the user of an enrolment token
// when one is given (never the signed-in user's, so a token cannot upgrade someone else's
// session), else the signed-in user. The user never comes from anything else in the body.
func (s *Service) registrationTarget(r *http.Request, token string) (store.User, ceremonyState, error) {
	ctx := r.Context()
	var st ceremonyState
	if token != "" {
		in, err := s.validInvite(ctx, token, store.PurposeEnrol)
		if err != nil {
			return store.User{}, st, err
		}
		u, err := s.store.UserByID(ctx, in.UserID)
		if err != nil || u.Disabled {
			return store.User{}, st, fail(http.StatusForbidden, N("this enrolment link is not valid"), err)
		}
		st.InviteID = in.ID
		return u, st, nil
	}
	id, ok := s.Authenticate(r)
	if !ok || id.SessionID == "" {
		return store.User{}, st, fail(http.StatusUnauthorized, N("sign in or use an enrolment link first"), nil)
	}
	if !id.Restricted() {
		// A signed-in session adding a passkey needs a fresh verification (issue 16); a recovery
		// session exists to enrol one and has no passkey to verify with.
		if err := s.fresh(id); err != nil {
			return store.User{}, st, err
		}
	}
	u, err := s.store.UserByID(ctx, id.User.ID)
	if err != nil {
		return store.User{}, st, fail(http.StatusUnauthorized, N("sign in first"), err)
	}
	st.SessionID = id.SessionID
	return u, st, nil
}

// validInvite finds an unused, unexpired invite of the given purpose for a plaintext token.
func (s *Service) validInvite(ctx context.Context, token, purpose string) (store.Invite, error) {
	in, err := s.store.Invite(ctx, hashToken(token))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return in, fail(http.StatusForbidden, N("this link is not valid"), err)
		}
		return in, err
	}
	if in.Purpose != purpose || !in.UsedAt.IsZero() || !s.now().Before(in.ExpiresAt) {
		return in, fail(http.StatusForbidden, N("this link has been used or has expired"), nil)
	}
	return in, nil
}

func (s *Service) registerBegin(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Token string `json:"token"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	if err := s.limits.allow(w, "register-ip", s.clientAddr(r)); err != nil {
		s.metrics.RateLimited("register")
		return err
	}
	u, st, err := s.registrationTarget(r, body.Token)
	if err != nil {
		s.metrics.Ceremony(kindRegister, "refused")
		return err
	}
	wu, _, err := s.loadWAUser(r.Context(), u)
	if err != nil {
		return err
	}
	exclude := make([]protocol.CredentialDescriptor, 0, len(wu.creds))
	for _, c := range wu.creds {
		exclude = append(exclude, c.Descriptor())
	}
	creation, session, err := s.wa.BeginRegistration(wu,
		webauthn.WithExclusions(exclude),
		webauthn.WithCredentialParameters(credentialParameters),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()),
	)
	if err != nil {
		return fmt.Errorf("auth: begin registration: %w", err)
	}
	st.Session = *session
	st.UserID = u.ID
	if err := s.beginCeremony(r.Context(), w, kindRegister, st); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, creation)
	return nil
}

func (s *Service) registerFinish(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	st, err := s.takeCeremony(w, r, kindRegister)
	if err != nil {
		s.metrics.Ceremony(kindRegister, "refused")
		if _, signedIn := s.Authenticate(r); !signedIn && errors.Is(err, errNoCeremony) {
			// Nobody who could register anything: neither a ceremony begun with a link nor a session.
			return fail(http.StatusUnauthorized, N("sign in or open your enrolment link first"), err)
		}
		return err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(r.Body)
	if err != nil {
		s.metrics.Ceremony(kindRegister, "refused")
		return bodyError(err, "passkey response not accepted")
	}
	u, err := s.store.UserByID(ctx, st.UserID)
	if err != nil || u.Disabled {
		return fail(http.StatusForbidden, N("account not available"), err)
	}
	if st.SessionID != "" {
		// A ceremony begun from a session finishes in that same, still valid session.
		id, ok := s.Authenticate(r)
		if !ok || id.SessionID != st.SessionID {
			return fail(http.StatusUnauthorized, N("your session has ended; sign in again"), nil)
		}
	}
	wu, existing, err := s.loadWAUser(ctx, u)
	if err != nil {
		return err
	}
	cred, err := s.wa.CreateCredential(wu, st.Session, parsed)
	if err != nil {
		s.metrics.Ceremony(kindRegister, "failed")
		s.audit(ctx, r, u.ID, "passkey_add_failed", redactErr(err))
		return fail(http.StatusBadRequest, N("passkey response not accepted"), err)
	}
	if !parsed.Response.AttestationObject.AuthData.Flags.HasUserVerified() {
		return fail(http.StatusBadRequest, N("passkey response not accepted"), errors.New("user not verified"))
	}
	transports := make([]string, len(cred.Transport))
	for i, t := range cred.Transport {
		transports[i] = string(t)
	}
	// Enrolment through a link or a recovery session signs the user in with the new passkey: the
	// ceremony just verified it, so it counts as used now. A signed-in user adding a passkey keeps
	// their session.
	cur, signedIn := s.Authenticate(r)
	signsIn := st.InviteID != 0 || !signedIn || cur.Restricted() || cur.User.ID != u.ID
	sc := store.Credential{
		ID: cred.ID, UserID: u.ID, Name: defaultPasskeyName(cred.Authenticator.AAGUID, r.UserAgent(), existing, s.lang(r).text),
		PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount, AAGUID: cred.Authenticator.AAGUID,
		Transports: transports, BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState,
		AttestationFormat: cred.AttestationFormat, AttestationType: cred.AttestationType, CreatedAt: s.now(),
	}
	if signsIn {
		sc.LastUsedAt = sc.CreatedAt
	}
	enrol := store.Enrolment{Credential: sc, InviteID: st.InviteID}
	var codes []string
	if len(existing) == 0 {
		// The first passkey comes with recovery codes, shown once: one passkey on one device must
		// never be the only way in.
		codes, enrol.RecoveryCodes, err = newRecoveryCodes()
		if err != nil {
			return err
		}
	}
	if err := s.store.RegisterCredential(ctx, enrol); err != nil {
		switch {
		case errors.Is(err, store.ErrUsed):
			return fail(http.StatusForbidden, N("this enrolment link has been used or has expired"), err)
		case errors.Is(err, store.ErrConflict):
			return fail(http.StatusBadRequest, N("this passkey is already registered"), err)
		}
		return err
	}
	s.metrics.Ceremony(kindRegister, "ok")
	s.audit(ctx, r, u.ID, "passkey_added", "credential "+credRef(cred.ID))
	if len(codes) > 0 {
		s.audit(ctx, r, u.ID, "recovery_codes_created", fmt.Sprintf("%d codes", len(codes)))
	}
	if signsIn {
		if signedIn && cur.Restricted() && cur.User.ID == u.ID {
			if err := s.store.RevokeSession(ctx, u.ID, cur.SessionID); err == nil {
				s.Refresh(ctx)
			}
		}
		if _, err := s.newSession(ctx, w, r, newSessionParams{userID: u.ID, method: MethodPasskey, credentialID: cred.ID,
			backupEligible: cred.Flags.BackupEligible, aaguid: cred.Authenticator.AAGUID}); err != nil {
			return err
		}
	}
	// The new passkey's name is shown in an editable field (rename in place); a passkey made in
	// a recovery session leads to an account page that offers to remove the lost ones.
	out := map[string]any{"recovery_codes": codes, "redirect": s.accountURL(r),
		"passkey": map[string]string{"id": base64.RawURLEncoding.EncodeToString(cred.ID), "name": sc.Name}}
	if signedIn && cur.Restricted() && cur.User.ID == u.ID {
		out["redirect"] = s.accountURL(r) + "?recovered=1"
	}
	if sig, err := s.signal(ctx, u); err == nil {
		out["signal"] = sig
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// bodyError maps a parse failure to 413 for oversized bodies and 400 otherwise.
func bodyError(err error, msg string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fail(http.StatusRequestEntityTooLarge, N("request body too large"), err)
	}
	return fail(http.StatusBadRequest, msg, err)
}

func (s *Service) loginBegin(w http.ResponseWriter, r *http.Request) error {
	if err := s.limits.allow(w, "login-ip", s.clientAddr(r)); err != nil {
		s.metrics.RateLimited("login")
		return err
	}
	var body struct {
		StepUp bool `json:"step_up"`
	}
	if r.ContentLength > 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	assertion, session, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return fmt.Errorf("auth: begin login: %w", err)
	}
	st := ceremonyState{Session: *session, StepUp: body.StepUp}
	if err := s.beginCeremony(r.Context(), w, kindLogin, st); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, assertion)
	return nil
}

// errLogin is the one answer to every failed assertion of a passkey the server holds, so that a
// disabled user, a user handle that does not match and a bad signature cannot be told apart.
var errLogin = N("passkey not accepted")

// errUnknownCredential answers an assertion whose credential ID is not in the store (a passkey
// removed from the account, or never registered here). It reveals nothing about any user: a
// credential ID is unguessable and only its holder has it, and the holder learns only that the
// server does not know it, so that the page can tell the password manager to drop it with the
// WebAuthn Signal API (hostile/CASES.md "Login answers").
var errUnknownCredential = N("This passkey was removed from your account, or was never registered here. Use another passkey, or recover access.")

func (s *Service) loginFinish(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	st, err := s.takeCeremony(w, r, kindLogin)
	if err != nil {
		s.metrics.Ceremony(kindLogin, "refused")
		return err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBody(r.Body)
	if err != nil {
		s.metrics.Ceremony(kindLogin, "refused")
		return bodyError(err, errLogin)
	}
	var (
		owner      store.User
		stored     store.Credential
		known      bool
		unknownCID bool // the credential ID is not in the store at all
		beChanged  bool
	)
	respFlags := parsed.Response.AuthenticatorData.Flags
	handler := func(rawID, handle []byte) (webauthn.User, error) {
		c, err := s.store.Credential(ctx, rawID)
		unknownCID = errors.Is(err, store.ErrNotFound)
		if err == nil {
			owner, err = s.store.UserByID(ctx, c.UserID)
		}
		if err != nil || owner.Disabled || !bytes.Equal(handle, userHandle(owner.ID)) {
			// A decoy with this credential ID and a key nobody holds: the library then runs the
			// same checks and the signature verification fails, so every refusal takes one path.
			return s.decoy(rawID, handle), nil
		}
		known, stored = true, c
		wc := toWA(c)
		// Password managers turn device-bound passkeys into synced ones (BE 0→1). Accept that and
		// record it; the opposite (BE 1→0) stays refused by the library, as it never happens
		// legitimately.
		if !c.BackupEligible && respFlags.HasBackupEligible() {
			wc.Flags.BackupEligible = true
			beChanged = true
		}
		return &waUser{handle: userHandle(owner.ID), user: owner, creds: []webauthn.Credential{wc}}, nil
	}
	_, cred, err := s.wa.ValidatePasskeyLogin(handler, st.Session, parsed)
	if err != nil || !known {
		s.metrics.Ceremony(kindLogin, "failed")
		uid := ""
		if known {
			uid = owner.ID
		}
		if unknownCID && !known {
			// Said in words: the library's text for it ("unable to find the credential...") is
			// developer detail, and the same row for a removed and a never-known passkey.
			s.audit(ctx, r, "", "login_failed", "passkey not registered (removed or unknown)")
			return &apiError{status: http.StatusBadRequest, msg: errUnknownCredential, cause: err, unknownCredential: true}
		}
		s.audit(ctx, r, uid, "login_failed", "passkey not accepted: "+redactErr(err))
		return fail(http.StatusBadRequest, errLogin, err)
	}
	if cred.Authenticator.CloneWarning {
		s.metrics.Ceremony(kindLogin, "failed")
		s.audit(ctx, r, owner.ID, "possible_cloned_authenticator", fmt.Sprintf("credential %s: counter %d after %d",
			credRef(stored.ID), parsed.Response.AuthenticatorData.Counter, stored.SignCount))
		return fail(http.StatusBadRequest, errLogin, errors.New("sign counter did not increase"))
	}
	if !respFlags.HasUserVerified() {
		return fail(http.StatusBadRequest, errLogin, errors.New("user not verified"))
	}
	now := s.now()
	bs := respFlags.HasBackupState()
	if err := s.store.UseCredential(ctx, store.CredentialUse{ID: stored.ID, OldSignCount: stored.SignCount,
		SignCount: cred.Authenticator.SignCount, BackupEligible: cred.Flags.BackupEligible, BackupState: bs, At: now}); err != nil {
		if errors.Is(err, store.ErrUsed) {
			return fail(http.StatusBadRequest, errLogin, err)
		}
		return err
	}
	if beChanged || bs != stored.BackupState {
		s.audit(ctx, r, owner.ID, "backup_flags_changed", fmt.Sprintf("credential %s: backup eligible %t→%t, backed up %t→%t",
			credRef(stored.ID), stored.BackupEligible, cred.Flags.BackupEligible, stored.BackupState, bs))
	}
	cur, signedIn := s.Authenticate(r)
	if st.StepUp && (!signedIn || cur.User.ID != owner.ID) {
		s.audit(ctx, r, owner.ID, "step_up_refused", "passkey belongs to another account")
		return fail(http.StatusForbidden, N("sign in with a passkey of the account you are signed in with"), nil)
	}
	if signedIn && cur.SessionID != "" && !cur.Restricted() && cur.User.ID == owner.ID {
		// The same user verified again (step-up): refresh the existing session, make no new one.
		if err := s.store.VerifySession(ctx, cur.SessionID, now, stored.ID, cred.Flags.BackupEligible, stored.AAGUID); err != nil {
			return err
		}
		s.Refresh(ctx)
	} else {
		if _, err := s.newSession(ctx, w, r, newSessionParams{userID: owner.ID, method: MethodPasskey, credentialID: stored.ID,
			backupEligible: cred.Flags.BackupEligible, aaguid: stored.AAGUID}); err != nil {
			return err
		}
		if signedIn && cur.SessionID != "" {
			// The new cookie replaces the browser's previous one, which may have been planted by a
			// sibling subdomain (session fixation) or be a recovery session: end it, so that no
			// value the browser held before the login still works after it.
			if err := s.store.RevokeSession(ctx, "", cur.SessionID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("auth: end the replaced session: %w", err)
			}
			s.Refresh(ctx)
			s.audit(ctx, r, cur.User.ID, "session_replaced", "by a sign-in of "+owner.Name)
		}
	}
	s.metrics.Ceremony(kindLogin, "ok")
	s.audit(ctx, r, owner.ID, "login", "credential "+credRef(stored.ID))
	out := map[string]any{"redirect": s.safeRedirect(r, r.URL.Query().Get("rd"))}
	if sig, err := s.signal(ctx, owner); err == nil {
		out["signal"] = sig
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// signalData is what a page hands to the WebAuthn Signal API after a sign-in, an enrolment or a
// removal: the passkeys the server accepts for the user (signalAllAcceptedCredentials, so that a
// password manager drops the ones removed here) and the user's current names
// (signalCurrentUserDetails). It goes only to the user it describes.
type signalData struct {
	RPID          string   `json:"rp_id"`
	UserID        string   `json:"user_id"` // the WebAuthn user handle, base64url
	Name          string   `json:"name"`
	DisplayName   string   `json:"display_name"`
	CredentialIDs []string `json:"credential_ids"`
}

func (s *Service) signal(ctx context.Context, u store.User) (*signalData, error) {
	creds, err := s.store.Credentials(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	d := &signalData{RPID: s.opts.RPID, UserID: base64.RawURLEncoding.EncodeToString(userHandle(u.ID)), Name: u.Name,
		DisplayName: displayName(u), CredentialIDs: make([]string, 0, len(creds))}
	for _, c := range creds {
		d.CredentialIDs = append(d.CredentialIDs, base64.RawURLEncoding.EncodeToString(c.ID))
	}
	return d, nil
}

// decoy returns a user whose only credential has the asked-for ID and a public key whose private
// half was thrown away, so that verification fails the ordinary way.
func (s *Service) decoy(rawID, handle []byte) webauthn.User {
	return &waUser{handle: handle, creds: []webauthn.Credential{{ID: rawID, PublicKey: decoyKey,
		Flags: webauthn.CredentialFlags{UserPresent: true, UserVerified: true, BackupEligible: true}}}}
}

var decoyKey = func() []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	pub, _ := k.PublicKey.ECDH()
	raw := pub.Bytes() // 0x04 || X || Y
	b, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         1, XCoord: raw[1:33], YCoord: raw[33:],
	})
	if err != nil {
		panic(err)
	}
	return b
}()

// credRef names a credential in logs and audit rows by a short, non-identifying prefix.
func credRef(id []byte) string { return account.CredentialRef(id) }

func (s *Service) logout(w http.ResponseWriter, r *http.Request) error {
	if id, ok := s.Authenticate(r); ok && id.SessionID != "" {
		if err := s.store.RevokeSession(r.Context(), "", id.SessionID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		s.Refresh(r.Context())
		s.audit(r.Context(), r, id.User.ID, "logout", "")
	}
	s.clearSessionCookie(w, r)
	redirect := s.loginURL(r)
	if rd := r.URL.Query().Get("rd"); rd != "" {
		redirect = s.safeRedirect(r, rd)
	}
	writeJSON(w, http.StatusOK, map[string]string{"redirect": redirect})
	return nil
}

// accountURL is the account page on the portal of the request's domain.
func (s *Service) accountURL(r *http.Request) string {
	return s.domainOf(r).base() + "/.latchkey/account"
}

func baseURL(u *url.URL) string { return u.Scheme + "://" + u.Host }

func (s *Service) safeRedirect(r *http.Request, rd string) string {
	if s.opts.SafeRedirect == nil || rd == "" {
		return s.accountURL(r)
	}
	v := s.opts.SafeRedirect(rd)
	if v == baseURL(s.opts.PublicURL)+"/.latchkey/account" {
		// The policy's fallback (or the primary portal's account page): stay on the portal of the
		// domain the browser is on, whose cookie it holds (issue 23).
		return s.accountURL(r)
	}
	return v
}

type newSessionParams struct {
	userID         string
	method         string
	credentialID   []byte
	backupEligible bool
	aaguid         []byte
}

func sessionRow(id [sessionIDLen]byte, p newSessionParams, now time.Time, lifetime time.Duration, ua, ip string) store.Session {
	se := store.Session{ID: encodeID(id), UserID: p.userID, CredentialID: p.credentialID, Method: p.method,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(lifetime), UserAgent: truncate(ua, 256), IP: ip,
		BackupEligible: p.backupEligible, AAGUID: p.aaguid}
	if p.method == MethodPasskey {
		se.VerifiedAt = now
	}
	return se
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
