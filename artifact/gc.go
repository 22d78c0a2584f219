package artifact

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// GCReport says what GC removed (or, with DryRun, would remove).
type GCReport struct {
	WorkDirs []string // work/<step>/<key> folders
	Objects  []string // objects/<digest> folders
	Bytes    int64    // their total file size
}

// GCOptions bound what GC may remove.
type GCOptions struct {
	// OlderThan: only work folders and objects untouched for this long go
	// (a running pipeline holds object digests in its workflow history, not
	// in the store, so the grace period must exceed the longest run).
	OlderThan time.Duration
	DryRun    bool
}

// GC removes work folders untouched for OlderThan that no one holds
// (LockWorkDir), then objects older than that which no index entry and no
// remaining work folder names. A held work folder, or one changed within
// the period, is kept with everything it names.
func (s *Store) GC(ctx context.Context, o GCOptions) (GCReport, error) {
	if o.OlderThan <= 0 {
		return GCReport{}, fmt.Errorf("artifact store: gc: OlderThan must be positive")
	}
	cutoff := time.Now().Add(-o.OlderThan)
	var rep GCReport
	workRoot := filepath.Join(s.root, "work")
	steps, _ := os.ReadDir(workRoot)
	for _, st := range steps {
		keys, _ := os.ReadDir(filepath.Join(workRoot, st.Name()))
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			dir := filepath.Join(workRoot, st.Name(), k.Name())
			if !k.IsDir() || newest(dir).After(cutoff) {
				continue
			}
			fl := flock.New(filepath.Join(dir, lockFile))
			if ok, err := fl.TryLock(); err != nil || !ok {
				continue // held (or unlockable): in use
			}
			rep.Bytes += size(dir)
			rep.WorkDirs = append(rep.WorkDirs, dir)
			if !o.DryRun {
				if err := os.RemoveAll(dir); err != nil {
					_ = fl.Close()
					return rep, fmt.Errorf("artifact store: gc: %w", err)
				}
			}
			_ = fl.Close()
		}
	}
	removed := map[string]bool{}
	for _, d := range rep.WorkDirs {
		removed[d] = true
	}
	refs := map[string]bool{}
	for _, root := range []string{filepath.Join(s.root, "index"), workRoot} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && removed[p] {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() && strings.HasSuffix(p, ".json") {
				if b, err := os.ReadFile(p); err == nil {
					var v any
					if json.Unmarshal(b, &v) == nil {
						collectDigests(v, refs)
					}
				}
			}
			return nil
		})
	}
	objs, _ := os.ReadDir(filepath.Join(s.root, "objects"))
	for _, e := range objs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		p := filepath.Join(s.root, "objects", e.Name())
		if !digestRE.MatchString(e.Name()) || refs[e.Name()] || newest(p).After(cutoff) {
			continue
		}
		rep.Bytes += size(p)
		rep.Objects = append(rep.Objects, p)
		if !o.DryRun {
			if err := os.RemoveAll(p); err != nil {
				return rep, fmt.Errorf("artifact store: gc: %w", err)
			}
		}
	}
	return rep, nil
}

// collectDigests adds every string in v that is a digest (or a file:// URI
// ending in one) to refs.
func collectDigests(v any, refs map[string]bool) {
	switch t := v.(type) {
	case string:
		if d := filepath.Base(t); digestRE.MatchString(d) {
			refs[d] = true
		}
	case map[string]any:
		for _, e := range t {
			collectDigests(e, refs)
		}
	case []any:
		for _, e := range t {
			collectDigests(e, refs)
		}
	}
}

// newest is the latest modification time of the files under p (p's own
// for a folder without files); the lock file, which GC itself may create,
// and folder times, which that creation changes, do not count.
func newest(p string) time.Time {
	var t time.Time
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == lockFile {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().After(t) {
			t = info.ModTime()
		}
		return nil
	})
	if t.IsZero() {
		if info, err := os.Stat(p); err == nil {
			t = info.ModTime()
		}
	}
	return t
}

func size(p string) int64 {
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
