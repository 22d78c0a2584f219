package artifact

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// AutoGCOptions configure the garbage collection a store runs by itself
// after a run (AfterRun). The zero value is on, with the defaults below.
type AutoGCOptions struct {
	// Disabled turns automatic collection off (`loraflow gc` still works).
	Disabled bool
	// OlderThan is GC's grace period (GCOptions.OlderThan); 0:
	// DefaultAutoGCOlderThan. It must exceed the longest run.
	OlderThan time.Duration
	// MinInterval is the least time between two automatic collections of
	// one store, over all workers that share it; 0: DefaultAutoGCInterval.
	MinInterval time.Duration
	// Timeout bounds one automatic collection; what is left waits for the
	// next one. 0: DefaultAutoGCTimeout.
	Timeout time.Duration
}

// The defaults of AutoGCOptions.
const (
	DefaultAutoGCOlderThan = 7 * 24 * time.Hour
	DefaultAutoGCInterval  = time.Hour
	DefaultAutoGCTimeout   = 30 * time.Second
)

const (
	gcStampFile = ".gc-last" // its mtime: when the last automatic collection started
	gcLockFile  = ".gc-lock" // flock(2)ed by the worker collecting
)

func (o AutoGCOptions) withDefaults() AutoGCOptions {
	if o.OlderThan <= 0 {
		o.OlderThan = DefaultAutoGCOlderThan
	}
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultAutoGCInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultAutoGCTimeout
	}
	return o
}

// SetAutoGC sets the options of AfterRun.
func (s *Store) SetAutoGC(o AutoGCOptions) { s.autoGC = o }

// AfterRun is called when a pipeline run has finished: it runs GC with the
// store's AutoGCOptions unless they disable it, another worker is
// collecting now, or one collected within MinInterval. It is bounded by
// Timeout, and a failure is logged, never returned: the run it follows has
// succeeded. ran reports whether a collection took place.
func (s *Store) AfterRun(ctx context.Context, log *slog.Logger) (rep GCReport, ran bool) {
	o := s.autoGC.withDefaults()
	if s.autoGC.Disabled {
		return GCReport{}, false
	}
	fl := flock.New(filepath.Join(s.root, gcLockFile))
	if ok, err := fl.TryLock(); err != nil || !ok {
		return GCReport{}, false // another worker is collecting
	}
	defer fl.Close()
	stamp := filepath.Join(s.root, gcStampFile)
	if st, err := os.Stat(stamp); err == nil && time.Since(st.ModTime()) < o.MinInterval {
		return GCReport{}, false
	}
	if err := touch(stamp); err != nil {
		log.Warn("automatic gc skipped", "store", s.root, "error", err)
		return GCReport{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	rep, err := s.GC(ctx, GCOptions{OlderThan: o.OlderThan})
	if err != nil {
		log.Warn("automatic gc stopped", "store", s.root, "error", err, "work_folders", len(rep.WorkDirs), "objects", len(rep.Objects))
	} else if len(rep.WorkDirs)+len(rep.Objects) > 0 {
		log.Info("automatic gc", "store", s.root, "work_folders", len(rep.WorkDirs), "objects", len(rep.Objects), "bytes", rep.Bytes)
	}
	return rep, true
}

func touch(path string) error {
	now := time.Now()
	if err := os.Chtimes(path, now, now); err == nil {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("artifact store: %w", err)
	}
	return f.Close()
}
