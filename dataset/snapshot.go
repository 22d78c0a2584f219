package dataset

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// File names inside a snapshot folder.
const (
	TrainFile      = "train.jsonl"
	ValidationFile = "validation.jsonl"
	ManifestFile   = "manifest.json"
)

// Write stores the snapshot in dir (which must exist) as train.jsonl,
// validation.jsonl and manifest.json. The bytes depend only on the snapshot,
// so equal snapshots have equal digests.
func (s *Snapshot) Write(dir string) error {
	if err := writeJSONL(filepath.Join(dir, TrainFile), s.Train); err != nil {
		return err
	}
	if err := writeJSONL(filepath.Join(dir, ValidationFile), s.Validation); err != nil {
		return err
	}
	m := s.Manifest
	// Absolute source paths differ between machines; the digests identify the data.
	for i := range m.Sources {
		m.Sources[i].Path = filepath.Base(m.Sources[i].Path)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ManifestFile), append(b, '\n'), 0o644)
}

func writeJSONL(path string, examples []Example) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, e := range examples {
		if err := enc.Encode(e); err != nil {
			f.Close()
			return fmt.Errorf("dataset: %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("dataset: %s: %w", path, err)
	}
	return f.Close()
}

// ReadSnapshot loads a snapshot folder written by Write.
func ReadSnapshot(dir string) (*Snapshot, error) {
	s := &Snapshot{}
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("dataset: snapshot: %w", err)
	}
	if err := json.Unmarshal(b, &s.Manifest); err != nil {
		return nil, fmt.Errorf("dataset: snapshot %s: %w", ManifestFile, err)
	}
	if s.Train, err = readJSONL(filepath.Join(dir, TrainFile)); err != nil {
		return nil, err
	}
	if s.Validation, err = readJSONL(filepath.Join(dir, ValidationFile)); err != nil {
		return nil, err
	}
	return s, nil
}

func readJSONL(path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: snapshot: %w", err)
	}
	defer f.Close()
	var out []Example
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var e Example
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("dataset: %s:%d: %w", path, line, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
