package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcHeadroom is the least the heap may grow by between two garbage collections while `serve`
// runs (see tuneGC).
const gcHeadroom = 16 << 20

// tuneGC keeps at least headroom of allocation between two garbage collections, until ctx ends.
//
// Go's default (GOGC=100) starts a cycle once the heap has grown by the live heap again. Latchkey's
// live heap is a few megabytes (templates, catalogues, the session view) while every request
// allocates a few kilobytes, most of them net/http's own (the request, its header map, the
// response header snapshot): under load that is a cycle every few milliseconds, each scanning the
// whole live heap, with write barriers and allocation assists slowing every request while it
// runs. A bare handler with almost no live heap pays almost nothing for the same cycles. Here the
// percentage follows the live heap after each cycle so that the next one starts at live +
// headroom; once the live heap exceeds headroom (many sessions), GOGC=100 applies unchanged. The
// cost is at most headroom of extra resident memory.
//
// An operator's GOGC or GOMEMLIMIT is a decision about memory: then nothing is tuned.
func tuneGC(ctx context.Context, headroom uint64) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	cycles := make(chan struct{}, 1)
	notifyGC(ctx, cycles)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	last := 100
	defer func() {
		if last != 100 {
			debug.SetGCPercent(100)
		}
	}()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if p := gcPercent(sample[0].Value.Uint64(), headroom); p != last {
				debug.SetGCPercent(p)
				last = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-cycles:
		}
	}
}

// gcPercent is the GOGC that puts the next collection at live + headroom, and never below Go's
// default of 100.
func gcPercent(live, headroom uint64) int {
	if live == 0 || live >= headroom {
		return 100
	}
	// Steps of 10% keep a live heap that wobbles by a few bytes from resetting the pacer every
	// cycle.
	return int(headroom*100/live) / 10 * 10
}

// gcSentinel is garbage on purpose: its cleanup runs after each collection that found it
// unreachable, and makes the next one. It holds a pointer so that it is never a tiny
// allocation, whose cleanups may not run.
type gcSentinel struct{ _ *gcSentinel }

// notifyGC sends on ch (without blocking) after every garbage collection until ctx ends.
func notifyGC(ctx context.Context, ch chan<- struct{}) {
	var arm func()
	arm = func() {
		runtime.AddCleanup(&gcSentinel{}, func(struct{}) {
			if ctx.Err() != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
			arm()
		}, struct{}{})
	}
	arm()
}
