package provenance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
)

// ChunkSize is the read size used when hashing files (1 MiB, as
// model_signing does). Files are streamed, never read whole into memory.
const ChunkSize = 1 << 20

// FileDigest is the sha256 of one file of an artifact.
type FileDigest struct {
	// Name is the path relative to the artifact's folder, with forward
	// slashes (model_signing's resource name).
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lowercase hex
}

// TreeDigest is the digest of a set of files: each file's sha256, and two
// digests of the whole computed from them in the same pass.
//
// Manifest is loraflow's one digest of a folder artifact (ManifestDigest):
// its artifact store key, the digest its provenance statement names, the
// digest its dependants and the registry record. It covers names as well as
// contents. SHA256 is model_signing's root digest (FolderDigest), which
// covers contents only; it is the subject of the model-signing bundle alone,
// because model_signing's verifier recomputes that subject from the
// resources it lists (docs/provenance.md, One digest per artifact).
type TreeDigest struct {
	SHA256   string       // model_signing's root digest, lowercase hex
	Manifest string       // loraflow's folder digest, lowercase hex
	Files    []FileDigest // sorted by Name (PathLess)
	Bytes    int64        // total size of the files
}

// HashTree hashes every regular file under dir, in parallel (one worker per
// CPU), streaming each file in ChunkSize reads. Symbolic links and other
// non-regular files are refused, so that the digest covers exactly what a
// loader would read. Empty folders do not count.
func HashTree(ctx context.Context, dir string) (*TreeDigest, error) {
	names, err := listTree(dir)
	if err != nil {
		return nil, err
	}
	return HashFiles(ctx, dir, names)
}

// HashFiles hashes the named files (slash-separated, relative to dir) like
// HashTree does. Names under model_signing's ignored git paths are left out
// as HashTree leaves them out: model-transparency's file serializer
// (src/model_signing/_serialization/file.py, Serializer.serialize) applies
// should_ignore to every path of an explicit files_to_hash list too.
func HashFiles(ctx context.Context, dir string, names []string) (*TreeDigest, error) {
	files := make([]FileDigest, 0, len(names))
	for _, n := range names {
		if !ignoredName(n) {
			files = append(files, FileDigest{Name: n})
		}
	}
	sort.Slice(files, func(i, j int) bool { return PathLess(files[i].Name, files[j].Name) })
	for i := 1; i < len(files); i++ {
		if files[i].Name == files[i-1].Name {
			return nil, fmt.Errorf("provenance: file %q listed twice", files[i].Name)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := min(runtime.GOMAXPROCS(0), len(files))
	next := make(chan int)
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, ChunkSize)
			for i := range next {
				sum, size, err := hashFile(ctx, filepath.Join(dir, filepath.FromSlash(files[i].Name)), buf)
				if err != nil {
					errs[i] = err
					cancel()
					continue
				}
				files[i].SHA256, files[i].Size = sum, size
			}
		}()
	}
feed:
	for i := range files {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	// Report the first real failure, in name order; a cancellation caused by
	// another file's failure is not one.
	var first error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
		if err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("provenance: hashing %s: %w", dir, err)
	}
	td := &TreeDigest{Files: files, SHA256: FolderDigest(files), Manifest: ManifestDigest(files)}
	for _, f := range files {
		td.Bytes += f.Size
	}
	return td, nil
}

// HashFile returns the sha256 (lowercase hex) and size of one file.
func HashFile(ctx context.Context, path string) (FileDigest, error) {
	sum, size, err := hashFile(ctx, path, make([]byte, ChunkSize))
	if err != nil {
		return FileDigest{}, err
	}
	return FileDigest{Name: filepath.Base(path), Size: size, SHA256: sum}, nil
}

// FolderDigest is sha256 over the raw (binary) digests of files sorted by
// name: model_signing's root digest. files must be sorted by Name in
// PathLess order.
func FolderDigest(files []FileDigest) string {
	h := sha256.New()
	for _, f := range files {
		b, err := hex.DecodeString(f.SHA256)
		if err != nil || len(b) != sha256.Size {
			// Cannot happen for digests this package computed; make a
			// malformed one poison the result rather than be skipped.
			b = []byte("invalid:" + f.SHA256)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ManifestDigest is loraflow's folder digest: sha256 over the lines
// "<file sha256>  <relative path>\n" sorted by path bytes, exactly what
// `sha256sum` prints for the files sorted with LC_ALL=C (so anyone can
// recompute it with coreutils). Unlike FolderDigest it changes when a file
// is renamed, and a name cannot forge another entry: names with a
// backslash, newline or carriage return are escaped as sha256sum escapes
// them (sha256sumLine).
func ManifestDigest(files []FileDigest) string {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b FileDigest) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	for _, f := range sorted {
		io.WriteString(h, sha256sumLine(f.SHA256, f.Name))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sha256sumLine is the line GNU sha256sum prints for a file: a name with a
// backslash, newline or carriage return is escaped ("\\", "\n", "\r")
// and the line starts with a backslash (coreutils src/digest.c,
// print_filename and output_file), so no name can end its line early and
// pass for another file's entry: the digest of a folder is unambiguous.
func sha256sumLine(digest, name string) string {
	if !strings.ContainsAny(name, "\\\n\r") {
		return digest + "  " + name + "\n"
	}
	r := strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r")
	return "\\" + digest + "  " + r.Replace(name) + "\n"
}

// DigestPath returns the digest loraflow records for a path: the folder's
// ManifestDigest for a folder, the file's sha256 for a regular file.
func DigestPath(ctx context.Context, p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("provenance: %w", err)
	}
	if fi.IsDir() {
		td, err := HashTree(ctx, p)
		if err != nil {
			return "", err
		}
		return td.Manifest, nil
	}
	fd, err := HashFile(ctx, p)
	if err != nil {
		return "", err
	}
	return fd.SHA256, nil
}

// pathDigests are DigestPath's digest of a path and, for a folder,
// model_signing's root digest of it, which statements signed before one
// digest per artifact name instead.
type pathDigests struct{ digest, root string }

// digestsOf hashes p once for both of its digests.
func digestsOf(ctx context.Context, p string) (pathDigests, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return pathDigests{}, fmt.Errorf("provenance: %w", err)
	}
	if fi.IsDir() {
		td, err := HashTree(ctx, p)
		if err != nil {
			return pathDigests{}, err
		}
		return pathDigests{digest: td.Manifest, root: td.SHA256}, nil
	}
	fd, err := HashFile(ctx, p)
	if err != nil {
		return pathDigests{}, err
	}
	return pathDigests{digest: fd.SHA256}, nil
}

// names says whether a statement naming sha256 names this path.
func (pd pathDigests) names(sha256 string) bool {
	return sha256 == pd.digest || (pd.root != "" && sha256 == pd.root)
}

func hashFile(ctx context.Context, p string, buf []byte) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, fmt.Errorf("provenance: hash: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, fmt.Errorf("provenance: hash %s: %w", p, err)
		}
		k, err := f.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			n += int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, fmt.Errorf("provenance: hash %s: %w", p, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// PathLess orders slash-separated paths as model_signing orders its
// resources: model-transparency's src/model_signing/manifest.py yields
// resource descriptors from sorted(self._item_to_digest.items()), whose keys
// are File(path: PurePosixPath) dataclasses with order=True, and PurePath
// compares its parts (the components), each a str compared by code point.
// Byte order of UTF-8 is code-point order, so each component compares as a
// Go string; "a/b" sorts before "a-b" (component "a" < "a-b"), although
// '-' < '/' byte-wise.
func PathLess(a, b string) bool {
	for {
		ca, resta, moreA := strings.Cut(a, "/")
		cb, restb, moreB := strings.Cut(b, "/")
		if ca != cb {
			return ca < cb
		}
		if !moreA || !moreB {
			return !moreA && moreB
		}
		a, b = resta, restb
	}
}

// ignoredAtRoot are the paths model_signing leaves out of every folder it
// hashes by default: model-transparency's src/model_signing/hashing.py,
// Config.hash with _ignore_git_paths (True by default) adds
// os.path.join(model_path, p) for ".git/", ".gitattributes", ".github/" and
// ".gitignore" to the ignored paths; an ignored folder takes its children
// with it. They are relative to the model's root only.
var ignoredAtRoot = map[string]bool{".git": true, ".gitattributes": true, ".github": true, ".gitignore": true}

// ignoredName reports whether the slash-separated relative name is one of
// ignoredAtRoot or lies inside one (should_ignore: an ignored folder takes
// its children with it).
func ignoredName(name string) bool {
	first, _, _ := strings.Cut(path.Clean(name), "/")
	return ignoredAtRoot[first]
}

// listTree returns the slash-separated relative names of the regular files
// under dir, in PathLess order, without model_signing's ignored git paths.
func listTree(dir string) ([]string, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("provenance: %s is not a folder", dir)
	}
	var names []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignoredAtRoot[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			if d.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%s is a symbolic link; artifacts must hold regular files only", rel)
			}
			return fmt.Errorf("%s is not a regular file (%s)", rel, d.Type())
		}
		names = append(names, path.Clean(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("provenance: listing %s: %w", dir, err)
	}
	sort.Slice(names, func(i, j int) bool { return PathLess(names[i], names[j]) })
	return names, nil
}
