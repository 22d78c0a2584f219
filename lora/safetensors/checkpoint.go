package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loraflow/loraflow/internal/atomicfile"
)

// The file names of a Hugging Face checkpoint folder.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Index is the content of model.safetensors.index.json.
type Index struct {
	Metadata  map[string]any    `json:"metadata,omitempty"`
	WeightMap map[string]string `json:"weight_map"`
}

// Checkpoint is the tensors of a checkpoint folder: one model.safetensors,
// or the shards listed by model.safetensors.index.json. Its methods are safe
// for concurrent use until Close.
type Checkpoint struct {
	dir    string
	files  map[string]*File // shard file name -> file
	shard  map[string]string
	names  []string
	fnames []string
}

// OpenDir opens the checkpoint in dir. When model.safetensors.index.json is
// present every shard it names must exist and hold the tensors mapped to it;
// otherwise model.safetensors is opened.
func OpenDir(dir string) (*Checkpoint, error) {
	indexPath := filepath.Join(dir, IndexFileName)
	raw, err := readBounded(indexPath, MaxIndexSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return openSingle(dir)
	case err != nil:
		return nil, err // already names the file
	}
	var idx Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, formatErr(indexPath, "", "index JSON: %v", err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, formatErr(indexPath, "", `"weight_map" is missing or empty`)
	}
	c := &Checkpoint{dir: dir, files: make(map[string]*File), shard: make(map[string]string, len(idx.WeightMap))}
	names := make([]string, 0, len(idx.WeightMap))
	for name := range idx.WeightMap {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		shard := idx.WeightMap[name]
		if shard == "" || shard != filepath.Base(shard) || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) {
			c.Close()
			return nil, formatErr(indexPath, name, "shard %q is not a file name in the checkpoint folder", shard)
		}
		f, ok := c.files[shard]
		if !ok {
			f, err = Open(filepath.Join(dir, shard))
			if err != nil {
				c.Close()
				if errors.Is(err, fs.ErrNotExist) {
					return nil, formatErr(indexPath, name, "shard %q is missing: %v", shard, err)
				}
				return nil, fmt.Errorf("safetensors: %s: shard %q: %w", indexPath, shard, err)
			}
			c.files[shard] = f
			c.fnames = append(c.fnames, shard)
		}
		if _, ok := f.Info(name); !ok {
			c.Close()
			return nil, formatErr(indexPath, name, "weight_map names shard %q, which does not hold this tensor", shard)
		}
		c.shard[name] = shard
	}
	sort.Strings(c.fnames)
	c.names = names
	return c, nil
}

func openSingle(dir string) (*Checkpoint, error) {
	path := filepath.Join(dir, SingleFileName)
	f, err := Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("safetensors: %s: neither %s nor %s found: %w", dir, SingleFileName, IndexFileName, err)
		}
		return nil, err
	}
	c := &Checkpoint{dir: dir, files: map[string]*File{SingleFileName: f}, shard: make(map[string]string), fnames: []string{SingleFileName}}
	c.names = f.Names()
	for _, n := range c.names {
		c.shard[n] = SingleFileName
	}
	return c, nil
}

// Close releases every shard.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// Dir returns the checkpoint folder.
func (c *Checkpoint) Dir() string { return c.dir }

// Files returns the safetensors file names of the checkpoint, sorted.
func (c *Checkpoint) Files() []string { return append([]string(nil), c.fnames...) }

// Names returns every tensor name, sorted.
func (c *Checkpoint) Names() []string { return append([]string(nil), c.names...) }

// ShardOf returns the file name holding the tensor ("" when absent).
func (c *Checkpoint) ShardOf(name string) string { return c.shard[name] }

// Info returns the description of the named tensor; DataOffsets are relative
// to its shard.
func (c *Checkpoint) Info(name string) (TensorInfo, bool) {
	f := c.fileOf(name)
	if f == nil {
		return TensorInfo{}, false
	}
	return f.Info(name)
}

// Bytes returns the named tensor's raw bytes, a view into its shard.
func (c *Checkpoint) Bytes(name string) ([]byte, error) {
	f := c.fileOf(name)
	if f == nil {
		return nil, fmt.Errorf("safetensors: %s: tensor %q not found", c.dir, name)
	}
	return f.Bytes(name)
}

// Float32 returns the named tensor converted to a new []float32.
func (c *Checkpoint) Float32(name string) ([]float32, error) {
	f := c.fileOf(name)
	if f == nil {
		return nil, fmt.Errorf("safetensors: %s: tensor %q not found", c.dir, name)
	}
	return f.Float32(name)
}

// Metadata returns the "__metadata__" of the first shard (in file name order).
func (c *Checkpoint) Metadata() map[string]string {
	if len(c.fnames) == 0 {
		return nil
	}
	return c.files[c.fnames[0]].Metadata()
}

func (c *Checkpoint) fileOf(name string) *File {
	s, ok := c.shard[name]
	if !ok {
		return nil
	}
	return c.files[s]
}

// Source is what File and Checkpoint have in common: read access to named
// tensors. Consumers that accept either can take a Source.
type Source interface {
	Names() []string
	Info(name string) (TensorInfo, bool)
	Bytes(name string) ([]byte, error)
	Float32(name string) ([]float32, error)
	Close() error
}

var (
	_ Source = (*File)(nil)
	_ Source = (*Checkpoint)(nil)
)

// WriteIndex writes model.safetensors.index.json into dir atomically, for a
// checkpoint whose shards were written with WriteFile or Writer.
func WriteIndex(dir string, idx Index) error {
	path := filepath.Join(dir, IndexFileName)
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	tmp, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return commitTemp(tmp, path)
}
