package artifact

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// Names inside a locked work folder.
const (
	lockFile  = ".lock"      // flock(2)ed while a holder works in the folder
	ownerFile = "owner.json" // who holds it, for the message of the next one
)

// ErrWorkDirLocked is wrapped by the error of LockWorkDir when another
// process (or another attempt in this one) holds the folder.
var ErrWorkDirLocked = errors.New("work folder is locked by another holder")

// LockOwner says who holds a work folder.
type LockOwner struct {
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	What  string    `json:"what,omitempty"`
}

// LockedError is LockWorkDir's error for a folder held by someone else.
// Waiting and trying again is the remedy: the holder releases it when it
// finishes, and the kernel does when the holder dies.
type LockedError struct {
	Dir   string
	Owner *LockOwner // nil when the holder has not said who it is
}

func (e *LockedError) Error() string {
	s := "artifact store: " + e.Dir + ": " + ErrWorkDirLocked.Error()
	if o := e.Owner; o != nil {
		s += fmt.Sprintf(" (pid %d on %s since %s", o.PID, o.Host, o.Since.UTC().Format(time.RFC3339))
		if o.What != "" {
			s += ", " + o.What
		}
		s += ")"
	}
	return s
}

func (e *LockedError) Unwrap() error { return ErrWorkDirLocked }

// WorkLock is an exclusive hold on a work folder.
type WorkLock struct {
	Dir string
	fl  *flock.Flock
}

// LockWorkDir returns step's work folder for key, held exclusively until
// Unlock: two runs with the same inputs, or an attempt still running on a
// worker cut off from Temporal beside its successor, never write the same
// checkpoints. The lock is flock(2) on a file in the folder (gofrs/flock),
// so the kernel releases it when the holder exits or is killed — a crash
// leaves no stale lock, and no expiry is needed; on NFS the server's lease
// time bounds a lost client's hold. It does not wait: a held folder gives a
// *LockedError (wrapping ErrWorkDirLocked) naming the holder, for the
// caller to retry later. what describes the holder in that message.
func (s *Store) LockWorkDir(step, key, what string) (*WorkLock, error) {
	dir, err := s.WorkDir(step, key)
	if err != nil {
		return nil, err
	}
	fl := flock.New(filepath.Join(dir, lockFile))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("artifact store: locking %s: %w", dir, err)
	}
	if !ok {
		le := &LockedError{Dir: dir}
		if b, err := os.ReadFile(filepath.Join(dir, ownerFile)); err == nil {
			var o LockOwner
			if json.Unmarshal(b, &o) == nil {
				le.Owner = &o
			}
		}
		return nil, le
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(LockOwner{Host: host, PID: os.Getpid(), Since: time.Now(), What: what})
	if err := WriteFileAtomic(filepath.Join(dir, ownerFile), b); err != nil {
		_ = fl.Close()
		return nil, fmt.Errorf("artifact store: locking %s: %w", dir, err)
	}
	return &WorkLock{Dir: dir, fl: fl}, nil
}

// Unlock releases the folder. The lock file stays: removing it would let a
// waiter lock a file another process is about to recreate.
func (l *WorkLock) Unlock() error {
	_ = os.Remove(filepath.Join(l.Dir, ownerFile))
	return l.fl.Close()
}
