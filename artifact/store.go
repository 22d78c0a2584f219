package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/loraflow/loraflow/internal/atomicfile"

	"github.com/loraflow/loraflow/provenance"
)

// Ref names a committed artifact.
type Ref struct {
	URI    string `json:"uri"`
	SHA256 string `json:"sha256"`
}

// Store is a file-system artifact store.
type Store struct {
	root   string
	autoGC AutoGCOptions // AfterRun's (autogc.go)
}

// Open opens (creating if needed) the store rooted at root, which may be a
// path or a file:// URI.
func Open(root string) (*Store, error) {
	root = strings.TrimPrefix(root, "file://")
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	for _, d := range []string{"objects", "index", "work", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return nil, fmt.Errorf("artifact store: %w", err)
		}
	}
	s := &Store{root: abs}
	s.sweepScratch(24 * time.Hour)
	return s, nil
}

// sweepScratch removes scratch folders older than age: leftovers of workers
// that crashed while building an artifact (live ones are younger).
func (s *Store) sweepScratch(age time.Duration) {
	entries, err := os.ReadDir(filepath.Join(s.root, "tmp"))
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			_ = os.RemoveAll(filepath.Join(s.root, "tmp", e.Name()))
		}
	}
}

// Root is the store's folder.
func (s *Store) Root() string { return s.root }

var digestRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Path is the local folder of a committed artifact.
func (s *Store) Path(ref Ref) (string, error) {
	if !digestRE.MatchString(ref.SHA256) {
		return "", fmt.Errorf("artifact store: malformed digest %q", ref.SHA256)
	}
	p := filepath.Join(s.root, "objects", ref.SHA256)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("artifact store: artifact %s: %w", ref.SHA256, err)
	}
	return p, nil
}

// ScratchDir returns a fresh folder to build an artifact in; Commit moves it
// into the store.
func (s *Store) ScratchDir(prefix string) (string, error) {
	d, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), prefix+"-")
	if err != nil {
		return "", fmt.Errorf("artifact store: %w", err)
	}
	return d, nil
}

// WorkDir is a stable folder for a step's input key, kept across retries and
// worker crashes (for checkpoints).
func (s *Store) WorkDir(step, key string) (string, error) {
	d := filepath.Join(s.root, "work", safeName(step), safeName(key))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("artifact store: %w", err)
	}
	return d, nil
}

// Commit hashes the folder dir and moves it into the store, durably: every
// file and folder under dir is fsynced before the rename, and objects/ after
// it, so a committed Ref never names a folder whose files a power cut could
// leave empty or torn. If an object of that digest is already there it is
// hashed again: an intact one is kept (dir removed), a torn or altered one
// (an earlier crash, a bad disk) is replaced by dir.
func (s *Store) Commit(ctx context.Context, dir string) (Ref, error) {
	if err := atomicfile.SyncTree(dir, fsyncPath); err != nil {
		return Ref{}, fmt.Errorf("artifact store: commit %s: %w", dir, err)
	}
	digest, err := DigestDir(ctx, dir)
	if err != nil {
		return Ref{}, err
	}
	objects := filepath.Join(s.root, "objects")
	dst := filepath.Join(objects, digest)
	ref := Ref{URI: "file://" + dst, SHA256: digest}
	intact := func() bool {
		d, err := DigestDir(ctx, dst)
		return err == nil && d == digest
	}
	if _, err := os.Stat(dst); err == nil {
		if intact() {
			return ref, os.RemoveAll(dir)
		}
		if err := ctx.Err(); err != nil {
			return Ref{}, err
		}
		// Move the damaged object out of the way (a rename is atomic; a
		// reader sees it or the replacement), then drop it.
		aside, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "torn-")
		if err != nil {
			return Ref{}, fmt.Errorf("artifact store: %w", err)
		}
		defer os.RemoveAll(aside)
		if err := os.Rename(dst, filepath.Join(aside, digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Ref{}, fmt.Errorf("artifact store: replacing torn object %s: %w", digest, err)
		}
	}
	if err := os.Rename(dir, dst); err != nil {
		if _, statErr := os.Stat(dst); statErr == nil && intact() { // a concurrent commit won
			return ref, os.RemoveAll(dir)
		}
		return Ref{}, fmt.Errorf("artifact store: commit %s: %w", dir, err)
	}
	if err := fsyncPath(objects); err != nil {
		return Ref{}, fmt.Errorf("artifact store: commit %s: %w", dir, err)
	}
	return ref, nil
}

// fsyncPath fsyncs a file or folder; the store's tests replace it to see
// the order of syncs.
var fsyncPath = atomicfile.Sync

// Lookup finds the artifact that step produced for key, if any; an entry
// whose artifact is gone or altered counts as absent.
func (s *Store) Lookup(ctx context.Context, step, key string) (Ref, bool, error) {
	b, err := os.ReadFile(s.indexPath(step, key))
	if errors.Is(err, fs.ErrNotExist) {
		return Ref{}, false, nil
	}
	if err != nil {
		return Ref{}, false, fmt.Errorf("artifact store: %w", err)
	}
	var ref Ref
	if err := json.Unmarshal(b, &ref); err != nil {
		return Ref{}, false, nil
	}
	p, err := s.Path(ref)
	if err != nil {
		return Ref{}, false, nil
	}
	if d, err := DigestDir(ctx, p); err != nil || d != ref.SHA256 {
		return Ref{}, false, nil
	}
	return ref, true, nil
}

// Record notes that step produced ref for key (atomically).
func (s *Store) Record(step, key string, ref Ref) error {
	p := s.indexPath(step, key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("artifact store: %w", err)
	}
	b, _ := json.Marshal(ref)
	return WriteFileAtomic(p, b)
}

func (s *Store) indexPath(step, key string) string {
	return filepath.Join(s.root, "index", safeName(step), safeName(key)+".json")
}

// safeName turns a step or key into one path element.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, s)
	if s == "." || s == ".." || s == "" {
		return "_" + s
	}
	return s
}

// WriteFileAtomic writes data to path through a temporary file and a rename.
func WriteFileAtomic(path string, data []byte) error { return atomicfile.WriteFile(path, data) }

// KeyOf is a digest of any JSON-encodable input, used as an index key.
func KeyOf(parts ...any) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, p := range parts {
		_ = enc.Encode(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// DigestDir returns the store's folder digest, loraflow's one digest of a
// folder (provenance.ManifestDigest): what `sha256sum` prints for the files
// sorted with LC_ALL=C, hashed. The same digest is the store key, the digest
// the artifact's provenance names, and the one the registry records, so an
// object, its attestation and its registry version show one digest. Files
// are hashed by provenance.HashTree: streamed and in parallel.
func DigestDir(ctx context.Context, dir string) (string, error) {
	td, err := provenance.HashTree(ctx, dir)
	if err != nil {
		return "", fmt.Errorf("artifact store: digest %s: %w", dir, err)
	}
	return td.Manifest, nil
}
