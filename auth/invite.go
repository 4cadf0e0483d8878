package auth

import (
	"context"
	"net/url"
	"time"

	"github.com/latchkeyhq/latchkey/account"
	"github.com/latchkeyhq/latchkey/store"
)

// NewEnrolmentLink makes a one-time enrolment link for a user, replacing any earlier unused one.
// It is account.NewEnrolmentLink, kept here for the bootstrap on serve and the tests.
func NewEnrolmentLink(ctx context.Context, st *store.Store, publicURL *url.URL, userID string, now time.Time) (string, error) {
	return account.NewEnrolmentLink(ctx, st, publicURL, userID, now)
}
