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
type keepAlive struct {
	mu      sync.Mutex
	details any
	stop    context.CancelFunc
	done    chan struct{}
}

func startKeepAlive(ctx context.Context, details any) *keepAlive {
	interval := 10 * time.Second
	if info := activity.GetInfo(ctx); info.HeartbeatTimeout > 0 {
		interval = max(info.HeartbeatTimeout/3, 100*time.Millisecond)
	}
	kctx, cancel := context.WithCancel(ctx)
	k := &keepAlive{details: details, stop: cancel, done: make(chan struct{})}
	activity.RecordHeartbeat(ctx, details)
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
				k.mu.Unlock()
				activity.RecordHeartbeat(ctx, d)
			}
		}
	}()
	return k
}

// set records new details and sends them now.
func (k *keepAlive) set(ctx context.Context, details any) {
	k.mu.Lock()
	k.details = details
	k.mu.Unlock()
	activity.RecordHeartbeat(ctx, details)
}

func (k *keepAlive) close() {
	k.stop()
	<-k.done
}
