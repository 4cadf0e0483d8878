package auth

import (
	"errors"
	"net/http"
	"time"
)

// Step-up for account-changing actions (issues 12 and 16). A session cookie alone must not be
// enough to take an account over for good: the admin console and every action that adds a way
// in or changes where recovery goes (adding a passkey from a signed-in session, removing one,
// new recovery codes, a new API token, a new e-mail address) need a passkey verification of
// this session within StepUpWindow. The verification is the ordinary step-up ceremony
// (login/begin with {"step_up": true}, then login/finish), which refreshes the session's
// verified_at in place; the pages run it inline when an action answers with step_up.

// StepUpWindow is how recent a session's last passkey verification must be.
const StepUpWindow = 5 * time.Minute

// AdminStepUp is the admin console's window: the same step-up.
const AdminStepUp = StepUpWindow

// errStepUp is the cause of every step-up refusal.
var errStepUp = errors.New("passkey verification too old")

// stepUpNeeded is the answer to an action whose session needs a fresh verification: 401 with
// {"error": ..., "step_up": true}, so that a page knows to run the ceremony and retry.
func stepUpNeeded() error {
	return &apiError{status: http.StatusUnauthorized, msg: N("confirm it's you with your passkey first"), cause: errStepUp, stepUp: true}
}

// fresh checks that a signed-in, full session verified a passkey within StepUpWindow.
func (s *Service) fresh(id Identity) error {
	if id.VerifiedAt.IsZero() || s.now().Sub(id.VerifiedAt) > StepUpWindow {
		return stepUpNeeded()
	}
	return nil
}

// freshOwner is accountOwner plus a fresh passkey verification.
func (s *Service) freshOwner(r *http.Request) (Identity, error) {
	id, err := s.accountOwner(r)
	if err != nil {
		return id, err
	}
	return id, s.fresh(id)
}
