package safetensors

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawFile builds a file from a header text and a data buffer without any of
// the writer's checks.
func rawFile(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func validFile(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.safetensors")
	err := WriteFile(path, []Tensor{
		{"a", F32, []int{2}, f32bytes(1, 2)},
		{"b", F16, []int{2}, []byte{0, 0x3c, 0, 0xc0}},
	}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenRejectsCorruptFiles(t *testing.T) {
	valid := validFile(t)
	hugeLen := make([]byte, 16)
	binary.LittleEndian.PutUint64(hugeLen, MaxHeaderSize+1)
	beyond := append([]byte(nil), valid...)
	binary.LittleEndian.PutUint64(beyond, uint64(len(valid)))
	eight := make([]byte, 8)
	cases := []struct {
		name, tensor, want string
		file               []byte
	}{
		{"short file", "", "shorter than the 8-byte header length", []byte{1, 2, 3}},
		{"truncated data", "b", "run past the", valid[:len(valid)-3]},
		{"header length beyond file", "", "runs past the end", beyond},
		{"header too large", "", "exceeds the 100000000-byte limit", hugeLen},
		{"empty header", "", "does not start with '{'", eight},
		{"not an object", "", "does not start with '{'", rawFile(`["a"]`, nil)},
		{"bad JSON", "a", "header entry: unexpected EOF", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]`, make([]byte, 4))},
		{"trailing data", "", "trailing data", rawFile(`{} {}`, nil)},
		{"invalid UTF-8", "", "UTF-8", rawFile("{\"\xff\":1}", nil)},
		{"unknown dtype", "a", `unknown dtype "F12"`, rawFile(`{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4))},
		{"missing dtype", "a", `missing "dtype"`, rawFile(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4))},
		{"negative dim", "a", "header entry", rawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4))},
		{"three offsets", "a", "has 3 values", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, make([]byte, 4))},
		{"end before begin", "a", "end before begin", rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, make([]byte, 4))},
		{"shape size mismatch", "a", "needs 8 bytes, but data_offsets [0,4) hold 4", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4))},
		{"shape overflow", "a", "overflows", rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4))},
		{"overlap", "b", `overlap tensor "a"`, rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8))},
		{"hole", "b", "leave a hole: bytes [4,8)", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12))},
		{"hole at start", "a", "leave a hole: bytes [0,4)", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8))},
		{"trailing bytes", "", "belong to no tensor", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 6))},
		{"duplicate names", "a", "duplicate name", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8))},
		{"bad metadata", "", "__metadata__ is not a map of strings", rawFile(`{"__metadata__":{"n":1}}`, nil)},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			var fe *FormatError
			if !errors.As(err, &fe) || fe.File != path || fe.Tensor != c.tensor {
				t.Errorf("error %#v: want file %q tensor %q", fe, path, c.tensor)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, c.want) {
				t.Errorf("error %q: want it to name the file and say %q", msg, c.want)
			}
			if c.tensor != "" && !strings.Contains(msg, `tensor "`+c.tensor+`"`) {
				t.Errorf("error %q does not name tensor %q", msg, c.tensor)
			}
		})
	}
	if _, err := Open(filepath.Join(dir, "absent.safetensors")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(absent) = %v", err)
	}
}

func writeTestShards(t *testing.T, dir string, index string) {
	t.Helper()
	if err := WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), []Tensor{
		{"model.embed_tokens.weight", F32, []int{2, 2}, f32bytes(1, 2, 3, 4)},
		{"model.norm.weight", BF16, []int{2}, []byte{0x80, 0x3f, 0x00, 0x40}},
	}, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), []Tensor{
		{"lm_head.weight", F16, []int{1, 2}, []byte{0x00, 0x3c, 0x00, 0xc0}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFileName), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
}

const goodIndex = `{"metadata":{"total_size":28},"weight_map":{
 "model.embed_tokens.weight":"model-00001-of-00002.safetensors",
 "model.norm.weight":"model-00001-of-00002.safetensors",
 "lm_head.weight":"model-00002-of-00002.safetensors"}}`

func TestOpenDirSharded(t *testing.T) {
	dir := t.TempDir()
	writeTestShards(t, dir, goodIndex)
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := []string{"lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"}
	if got := c.Names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("names %v", got)
	}
	if s := c.ShardOf("lm_head.weight"); s != "model-00002-of-00002.safetensors" {
		t.Errorf("ShardOf = %q", s)
	}
	if len(c.Files()) != 2 || c.Metadata()["format"] != "pt" {
		t.Errorf("files %v metadata %v", c.Files(), c.Metadata())
	}
	for name, want := range map[string][]float32{
		"lm_head.weight":            {1, -2},
		"model.norm.weight":         {1, 2},
		"model.embed_tokens.weight": {1, 2, 3, 4},
	} {
		got, err := c.Float32(name)
		if err != nil || len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("%s = %v, %v", name, got, err)
		}
	}
	if _, err := c.Bytes("nope"); err == nil {
		t.Error("Bytes(nope) succeeded")
	}
}

func TestOpenDirShardErrors(t *testing.T) {
	cases := []struct{ name, index, want string }{
		{"missing shard", strings.Replace(goodIndex, "model-00002-of-00002", "model-00003-of-00003", 1), `shard "model-00003-of-00003.safetensors" is missing`},
		{"tensor not in shard", strings.Replace(goodIndex, `"lm_head.weight"`, `"lm_head.bias"`, 1), `tensor "lm_head.bias": weight_map names shard`},
		{"path traversal", strings.Replace(goodIndex, "model-00002-of-00002", "../model-00002-of-00002", 1), "is not a file name"},
		{"bad JSON", `{"weight_map":`, "index JSON"},
		{"empty weight map", `{"weight_map":{}}`, "missing or empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTestShards(t, dir, c.index)
			ck, err := OpenDir(dir)
			if err == nil {
				ck.Close()
				t.Fatal("OpenDir succeeded")
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), IndexFileName) {
				t.Errorf("error %q, want ErrInvalid naming the index and saying %q", err, c.want)
			}
		})
	}
}

func TestOpenDirSingleAndEmpty(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenDir(dir); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty folder: %v", err)
	}
	if err := WriteFile(filepath.Join(dir, SingleFileName), []Tensor{{"x", F32, []int{1}, f32bytes(7)}}, nil); err != nil {
		t.Fatal(err)
	}
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.Float32("x"); err != nil || v[0] != 7 || c.ShardOf("x") != SingleFileName {
		t.Errorf("x = %v, %v", v, err)
	}
}

func TestWriterStreamsAndIsAtomic(t *testing.T) {
	dir := t.TempDir()
	tensors := []Tensor{
		{"w", F32, []int{2, 2}, f32bytes(1, 2, 3, 4)},
		{"h", F16, []int{3}, []byte{1, 2, 3, 4, 5, 6}},
		{"e", I64, []int{1}, []byte{9, 0, 0, 0, 0, 0, 0, 0}},
	}
	ref := filepath.Join(dir, "ref.safetensors")
	if err := WriteFile(ref, tensors, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	infos := make([]TensorInfo, len(tensors))
	for i, tt := range tensors {
		infos[i] = TensorInfo{Name: tt.Name, DType: tt.DType, Shape: tt.Shape}
	}
	out := filepath.Join(dir, "stream.safetensors")
	w, err := NewWriter(out, infos, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	if order := w.Infos(); order[0].Name != "e" || order[1].Name != "w" || order[2].Name != "h" {
		t.Errorf("header order %v", order)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Error("destination exists before Close")
	}
	if err := w.WriteTensor("w", []byte{1}); err == nil || !strings.Contains(err.Error(), "needs 16 bytes") {
		t.Errorf("short write: %v", err)
	}
	if err := w.WriteTensor("zz", nil); err == nil {
		t.Error("unknown tensor accepted")
	}
	for _, i := range []int{1, 0, 2} { // any order
		if err := w.WriteTensor(tensors[i].Name, tensors[i].Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFloat32("w", []float32{1, 2, 3, 4}); err == nil {
		t.Error("second write of a tensor accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(ref)
	b, _ := os.ReadFile(out)
	if string(a) != string(b) {
		t.Error("streamed file differs from WriteFile's")
	}

	// A writer closed before every tensor is written leaves the old file and no temporary.
	w, err = NewWriter(out, infos, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFloat32("w", []float32{5, 6, 7, 8}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "never written") {
		t.Errorf("incomplete Close: %v", err)
	}
	c, _ := os.ReadFile(out)
	if string(c) != string(b) {
		t.Error("failed write replaced the existing file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("leftover files: %v", entries)
	}
	for _, bad := range [][]TensorInfo{
		{{Name: "a", DType: F32}, {Name: "a", DType: F32}},
		{{Name: "a", DType: "F12"}},
		{{Name: "__metadata__", DType: F32}},
		{{Name: "a", DType: F32, Shape: []int{-1}}},
	} {
		if _, err := NewWriter(out, bad, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewWriter(%v) = %v", bad, err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	valid := validFile(f)
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)))
	f.Add(rawFile(`{"a":{"dtype":"BF16","shape":[],"data_offsets":[0,2]},"b":{"dtype":"F16","shape":[0],"data_offsets":[2,2]}}`, make([]byte, 2)))
	f.Add(rawFile(`{"__metadata__":{"a":"b"}}`, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := FromBytes("fuzz", b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			return
		}
		var total int64
		for _, name := range file.Names() {
			ti, _ := file.Info(name)
			raw, err := file.Bytes(name)
			if err != nil || int64(len(raw)) != int64(ti.NumElements()*ti.DType.Size()) {
				t.Fatalf("%s: %d bytes, %v", name, len(raw), err)
			}
			total += int64(len(raw))
			if ti.DType.IsFloat() {
				if _, err := file.Float32(name); err != nil {
					t.Fatal(err)
				}
			}
		}
		n := binary.LittleEndian.Uint64(b)
		if total != int64(len(b))-8-int64(n) {
			t.Fatalf("tensors cover %d of %d data bytes", total, int64(len(b))-8-int64(n))
		}
	})
}

func TestWriteIndexRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeTestShards(t, dir, `{}`)
	idx := Index{Metadata: map[string]any{"total_size": 28}, WeightMap: map[string]string{
		"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
		"model.norm.weight":         "model-00001-of-00002.safetensors",
		"lm_head.weight":            "model-00002-of-00002.safetensors",
	}}
	if err := WriteIndex(dir, idx); err != nil {
		t.Fatal(err)
	}
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Names()) != 3 || c.ShardOf("model.norm.weight") != "model-00001-of-00002.safetensors" {
		t.Errorf("names %v", c.Names())
	}
}
