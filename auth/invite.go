package auth

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// NewEnrolmentLink makes a one-time enrolment link for a user, replacing any earlier unused one.
// It is used by the CLI (user add, user invite), the bootstrap on serve and the admin console.
func NewEnrolmentLink(ctx context.Context, st *store.Store, publicURL *url.URL, userID string, now time.Time) (string, error) {
	token, hash, err := newToken()
	if err != nil {
		return "", err
	}
	if err := st.RevokeInvites(ctx, userID, store.PurposeEnrol); err != nil {
		return "", err
	}
	if _, err := st.CreateInvite(ctx, store.Invite{TokenHash: hash, UserID: userID, Purpose: store.PurposeEnrol,
		CreatedAt: now, ExpiresAt: now.Add(EnrolTTL)}); err != nil {
		return "", fmt.Errorf("auth: enrolment link: %w", err)
	}
	if err := st.Audit(ctx, store.Event{UserID: userID, Event: "enrolment_link_created", At: now}); err != nil {
		return "", err
	}
	return baseURL(publicURL) + "/.latchkey/enroll?token=" + url.QueryEscape(token), nil
}
