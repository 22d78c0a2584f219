package safetensors

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the reader as a whole safetensors file.
// It must never panic, never allocate by what the header claims (the header
// is bounded by the file, every tensor by its data_offsets), and whatever it
// accepts must be self-consistent: each tensor's bytes are exactly its
// shape's size and the tensors tile the data buffer. The seeds (valid files
// and each corruption of TestOpenRejectsCorruptFiles) run as a normal test
// in CI; fuzz with
//
//	go test ./lora/safetensors -run '^$' -fuzz FuzzParse -fuzztime 10m
func FuzzParse(f *testing.F) {
	valid := validFile(f)
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(rawFile(`{}`, nil))
	f.Add(rawFile(`{"__metadata__":{"format":"pt"}}`, nil))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)))
	f.Add(rawFile(`{"a":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}}`, make([]byte, 2)))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)))
	f.Add(rawFile("{\"\xff\":1}", nil))
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, 1<<63)
	f.Add(huge)
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := FromBytes("fuzz.safetensors", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		var pos int64
		for _, ti := range st.Infos() {
			b, err := st.Bytes(ti.Name)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != ti.NumElements()*ti.DType.Size() {
				t.Fatalf("tensor %q: %d bytes for shape %v of %s", ti.Name, len(b), ti.Shape, ti.DType)
			}
			if ti.DataOffsets[0] != pos {
				t.Fatalf("tensor %q starts at %d, want %d", ti.Name, ti.DataOffsets[0], pos)
			}
			pos = ti.DataOffsets[1]
			if ti.DType.IsFloat() {
				if _, err := st.Float32(ti.Name); err != nil {
					t.Fatalf("tensor %q: %v", ti.Name, err)
				}
			}
		}
	})
}

// TestOpenRefusesSpecialFiles: a FIFO, a device and a folder are refused at
// once, by file type, before anything is read (a FIFO would block a plain
// open forever), and the error names the file.
func TestOpenRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "model.safetensors")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, path := range []string{fifo, "/dev/zero", dir} {
		_, err := Open(path)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Open(%s) = %v, want a format error naming it as not a regular file", path, err)
		}
	}
	// A symlink is followed; the folder check (roots) is the caller's.
	link := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(link); !errors.Is(err, ErrInvalid) {
		t.Errorf("Open(symlink to /dev/zero) = %v, want ErrInvalid", err)
	}
}

// TestOpenDirRefusesHugeIndex: the index is size-checked before it is read.
func TestOpenDirRefusesHugeIndex(t *testing.T) {
	dir := t.TempDir()
	fh, err := os.Create(filepath.Join(dir, IndexFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(MaxIndexSize + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	fh.Close()
	_, err = OpenDir(dir)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "over the 67108864-byte limit") || !strings.Contains(err.Error(), IndexFileName) {
		t.Errorf("OpenDir = %v, want the index refused by size", err)
	}
}
