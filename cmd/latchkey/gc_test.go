package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestGCPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 100},              // nothing measured yet: Go's default
		{16 * mb, 100},        // the live heap alone is the headroom
		{200 * mb, 100},       // many sessions: never below the default
		{8 * mb, 200},         // next cycle at 8 + 16 MB
		{3 * mb, 530},         // 533%, in steps of 10
		{3*mb + 1000, 530},    // a wobble of the live heap changes nothing
		{15 * mb, 100},        // 106% rounds down to the default
		{1 * mb / 2, 3200},    // a small heap: 0.5 + 16 MB
		{16*mb - 1, 100},      // just under the headroom
		{5*mb + mb/2, 290},    // 290.9%
		{mb, 1600},            // 1 + 16 MB
		{2 * mb, 800},         // 2 + 16 MB
		{4 * mb, 400},         // 4 + 16 MB
		{10 * mb, 160},        // 10 + 16 MB
		{12 * mb, 130},        // 133%
		{gcHeadroom + 1, 100}, // past the headroom
	} {
		if got := gcPercent(c.live, 16*mb); got != c.want {
			t.Errorf("gcPercent(%d, 16 MB) = %d, want %d", c.live, got, c.want)
		}
	}
}

// TestNotifyGC: a collection is reported, and again for the next one (the sentinel re-arms).
func TestNotifyGC(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan struct{}, 1)
	notifyGC(ctx, ch)
	for i := range 2 {
		deadline := time.After(10 * time.Second)
	wait:
		for {
			runtime.GC()
			select {
			case <-ch:
				break wait
			case <-deadline:
				t.Fatalf("collection %d not reported", i+1)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// TestTuneGCRestoresDefault: while it runs a small live heap gets a higher percentage, and the
// default is back when its context ends.
func TestTuneGCRestoresDefault(t *testing.T) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOGC or GOMEMLIMIT is set: tuneGC leaves the collector alone")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tuneGC(ctx, 1<<40); close(done) }() // a headroom no test heap reaches
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		// Reading the percentage means setting it: put back what was read.
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		if p > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("percentage still %d", p)
		}
	}
	cancel()
	<-done
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("after the end: percentage %d, want 100", p)
	}
}
