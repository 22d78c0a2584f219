package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// keepAlive heartbeats the activity every interval with the last details
// given to set, so that long steps without natural progress points (model
// loading, evaluation, equivalence checks) never miss the heartbeat
// timeout. stop ends it.
//
// With watchSteps, each set is a unit of progress (a training step) and the
// keep-alive becomes a watchdog: once no set came for stallLimit, it stops
// heartbeating, so the server's heartbeat timeout ends a wedged attempt
// (and the retry resumes from the last checkpoint) instead of the training
// StartToClose hours later.
type keepAlive struct {
	mu      sync.Mutex
	details any
	stop    context.CancelFunc
	done    chan struct{}

	// usage, when set, is the energy of every attempt so far, sent with
	// each heartbeat (payload) so that the next attempt can add to it.
	usage func() Usage

	watch   bool
	lastSet time.Time     // of the last progress point (zero: none yet)
	longest time.Duration // longest gap between two progress points
	warned  bool
}

// The watchdog's limit: stepStallFactor times the longest step seen, and
// never less than stepStallMin (a first step, a checkpoint on a slow disk).
const (
	stepStallFactor = 10
	stepStallMin    = 10 * time.Minute
)

// watchSteps turns the watchdog on (see keepAlive).
func (k *keepAlive) watchSteps() {
	k.mu.Lock()
	k.watch = true
	k.mu.Unlock()
}

// stalled reports whether progress stopped for longer than the limit at
// now. Before the first progress point (model loading) it never is.
func (k *keepAlive) stalled(now time.Time) (bool, time.Duration) {
	if !k.watch || k.lastSet.IsZero() {
		return false, 0
	}
	limit := max(stepStallFactor*k.longest, stepStallMin)
	return now.Sub(k.lastSet) > limit, limit
}

// startKeepAlive starts heartbeating details; with m, each heartbeat also
// carries the energy of every attempt so far (m.total).
func startKeepAlive(ctx context.Context, details any, m *measurement) *keepAlive {
	interval := 10 * time.Second
	if info := activity.GetInfo(ctx); info.HeartbeatTimeout > 0 {
		interval = max(info.HeartbeatTimeout/3, 100*time.Millisecond)
	}
	kctx, cancel := context.WithCancel(ctx)
	k := &keepAlive{details: details, stop: cancel, done: make(chan struct{})}
	if m != nil {
		k.usage = m.total
	}
	activity.RecordHeartbeat(ctx, k.payload(details))
	go func() {
		defer close(k.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-kctx.Done():
				return
			case <-t.C:
				k.mu.Lock()
				d := k.details
				stalled, limit := k.stalled(time.Now())
				warn := stalled && !k.warned
				k.warned = k.warned || stalled
				k.mu.Unlock()
				if stalled {
					if warn {
						activity.GetLogger(ctx).Warn("no progress; heartbeats stopped so that the heartbeat timeout retries the attempt", "limit", limit)
					}
					continue
				}
				activity.RecordHeartbeat(ctx, k.payload(d))
			}
		}
	}()
	return k
}

// set records new details and sends them now.
func (k *keepAlive) set(ctx context.Context, details any) {
	k.mu.Lock()
	k.details = details
	k.progressAt(time.Now())
	k.mu.Unlock()
	activity.RecordHeartbeat(ctx, k.payload(details))
}

// Heartbeat is what an activity other than TrainLoRA heartbeats: what its
// step is doing, and the energy of every attempt so far.
type Heartbeat struct {
	Status string
	Usage  *Usage `json:",omitempty"`
}

// payload is details as sent: with the energy of every attempt so far when
// the keep-alive measures (a TrainProgress's Usage, or a status string
// as a Heartbeat).
func (k *keepAlive) payload(details any) any {
	if k.usage == nil {
		return details
	}
	u := k.usage()
	switch d := details.(type) {
	case TrainProgress:
		d.Usage = &u
		return d
	case string:
		return Heartbeat{Status: d, Usage: &u}
	}
	return details
}

func (k *keepAlive) close() {
	k.stop()
	<-k.done
}

// progressAt notes a progress point at now (k.mu held).
func (k *keepAlive) progressAt(now time.Time) {
	if !k.lastSet.IsZero() {
		k.longest = max(k.longest, now.Sub(k.lastSet))
	}
	k.lastSet, k.warned = now, false
}
