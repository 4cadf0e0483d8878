package auth

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"
)

// TestLimitsBounded floods the limiter with more distinct keys than it may hold: the map stays
// at its bound, the flood shares one overflow bucket (and is throttled there), and a key that
// was tracked before the flood keeps its own bucket, so a legitimate client is not locked out.
func TestLimitsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimits(func() time.Time { return now })
	w := httptest.NewRecorder()
	if err := l.allow(w, "login-ip", "192.0.2.1"); err != nil {
		t.Fatalf("first request of a legitimate client: %v", err)
	}
	refused := 0
	for i := range maxLimiterKeys + 5000 {
		if l.allow(w, "login-ip", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)) != nil {
			refused++
		}
	}
	if n := l.size(); n > maxLimiterKeys {
		t.Fatalf("limiter holds %d keys, bound is %d", n, maxLimiterKeys)
	}
	if refused == 0 {
		t.Fatal("a flood of new addresses past the bound was never throttled")
	}
	if err := l.allow(w, "login-ip", "192.0.2.1"); err != nil {
		t.Fatalf("the legitimate client is locked out by the flood: %v", err)
	}
	// Once the flood's buckets refill, they are forgotten and the map shrinks again.
	now = now.Add(time.Hour)
	l.sweep()
	if n := l.size(); n > 1 {
		t.Fatalf("after an idle hour the limiter still holds %d keys", n)
	}
}
