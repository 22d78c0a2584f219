package safetensors

import (
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/loraflow/loraflow/internal/atomicfile"
)

// Tensor is one tensor to write: Data holds its little-endian bytes,
// len(Data) must equal the product of Shape times DType.Size().
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// WriteFile writes tensors and optional metadata to path atomically (a
// temporary file in the same folder, fsynced, then renamed). The bytes equal
// those of the reference serializer for the same input.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	infos := make([]TensorInfo, len(tensors))
	for i, t := range tensors {
		infos[i] = TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape}
	}
	w, err := NewWriter(path, infos, metadata)
	if err != nil {
		return err
	}
	for _, t := range tensors {
		if err := w.WriteTensor(t.Name, t.Data); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}

// Writer streams a safetensors file: NewWriter writes the header, then each
// tensor's bytes are written with WriteTensor (in any order, each exactly
// once; the order of Infos is sequential on disk), and Close makes the file
// appear at its path atomically. Memory use is bounded by one tensor.
// A Writer is not safe for concurrent use.
type Writer struct {
	path      string
	tmp       *os.File
	dataStart int64
	order     []TensorInfo
	index     map[string]int
	written   []bool
	done      bool
}

// NewWriter creates the temporary file and writes the header for infos (their
// DataOffsets are ignored: offsets are assigned in the reference order,
// descending dtype alignment then name).
func NewWriter(path string, infos []TensorInfo, metadata map[string]string) (*Writer, error) {
	order, header, err := buildHeader(path, infos, metadata)
	if err != nil {
		return nil, err
	}
	tmp, err := atomicfile.Create(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	w := &Writer{path: path, tmp: tmp, order: order, index: make(map[string]int, len(order)), written: make([]bool, len(order))}
	for i, ti := range order {
		w.index[ti.Name] = i
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	if _, err := tmp.Write(n[:]); err != nil {
		w.Abort()
		return nil, fmt.Errorf("safetensors: %s: write header: %w", path, err)
	}
	if _, err := tmp.Write(header); err != nil {
		w.Abort()
		return nil, fmt.Errorf("safetensors: %s: write header: %w", path, err)
	}
	w.dataStart = 8 + int64(len(header))
	return w, nil
}

// Infos returns the tensors in header (on-disk) order, with their offsets.
func (w *Writer) Infos() []TensorInfo { return append([]TensorInfo(nil), w.order...) }

// WriteTensor writes one tensor's little-endian bytes.
func (w *Writer) WriteTensor(name string, data []byte) error {
	if w.done {
		return fmt.Errorf("safetensors: %s: tensor %q: writer is closed", w.path, name)
	}
	i, ok := w.index[name]
	if !ok {
		return fmt.Errorf("safetensors: %s: tensor %q is not in the header", w.path, name)
	}
	if w.written[i] {
		return fmt.Errorf("safetensors: %s: tensor %q written twice", w.path, name)
	}
	ti := w.order[i]
	if want := ti.DataOffsets[1] - ti.DataOffsets[0]; int64(len(data)) != want {
		return fmt.Errorf("safetensors: %s: tensor %q: shape %v of %s needs %d bytes, got %d", w.path, name, ti.Shape, ti.DType, want, len(data))
	}
	if _, err := w.tmp.WriteAt(data, w.dataStart+ti.DataOffsets[0]); err != nil {
		return fmt.Errorf("safetensors: %s: tensor %q: %w", w.path, name, err)
	}
	w.written[i] = true
	return nil
}

// WriteFloat32 encodes v to the tensor's dtype (F32, F16, BF16 or F64,
// rounding to nearest even) and writes it.
func (w *Writer) WriteFloat32(name string, v []float32) error {
	i, ok := w.index[name]
	if !ok {
		return fmt.Errorf("safetensors: %s: tensor %q is not in the header", w.path, name)
	}
	b, err := EncodeFloat32(w.order[i].DType, v)
	if err != nil {
		return fmt.Errorf("safetensors: %s: tensor %q: %w", w.path, name, err)
	}
	return w.WriteTensor(name, b)
}

// Close checks that every tensor was written, fsyncs the temporary file and
// renames it to the destination path. On error the temporary file is removed.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	for i, ok := range w.written {
		if !ok {
			w.Abort()
			return fmt.Errorf("safetensors: %s: tensor %q was never written", w.path, w.order[i].Name)
		}
	}
	w.done = true
	return commitTemp(w.tmp, w.path)
}

// Abort discards the partly written file. It is safe to call after Close.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	name := w.tmp.Name()
	_ = w.tmp.Close()
	_ = os.Remove(name)
}

// commitTemp moves the finished temporary file into place.
func commitTemp(tmp *os.File, path string) error {
	if err := atomicfile.Commit(tmp, path); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// buildHeader assigns offsets in the reference order and returns the padded
// JSON header.
func buildHeader(path string, infos []TensorInfo, metadata map[string]string) ([]TensorInfo, []byte, error) {
	order := make([]TensorInfo, len(infos))
	seen := make(map[string]bool, len(infos))
	for i, ti := range infos {
		switch {
		case ti.Name == metadataKey:
			return nil, nil, formatErr(path, ti.Name, "reserved name")
		case !utf8.ValidString(ti.Name):
			return nil, nil, formatErr(path, ti.Name, "name is not valid UTF-8")
		case seen[ti.Name]:
			return nil, nil, formatErr(path, ti.Name, "duplicate name")
		case !ti.DType.Valid():
			return nil, nil, formatErr(path, ti.Name, "unknown dtype %q", ti.DType)
		}
		seen[ti.Name] = true
		for _, d := range ti.Shape {
			if d < 0 {
				return nil, nil, formatErr(path, ti.Name, "negative dimension in shape %v", ti.Shape)
			}
		}
		order[i] = TensorInfo{Name: ti.Name, DType: ti.DType, Shape: append([]int(nil), ti.Shape...)}
	}
	sort.Slice(order, func(i, j int) bool {
		ri, rj := dtypeRank[order[i].DType], dtypeRank[order[j].DType]
		if ri != rj {
			return ri > rj
		}
		return order[i].Name < order[j].Name
	})
	var off int64
	for i := range order {
		n := int64(order[i].NumElements()) * int64(order[i].DType.Size())
		order[i].DataOffsets = [2]int64{off, off + n}
		off += n
	}

	buf := []byte{'{'}
	first := true
	if metadata != nil {
		buf = appendJSONString(buf, metadataKey)
		buf = append(buf, ':', '{')
		keys := slices.Sorted(maps.Keys(metadata))
		for i, k := range keys {
			if !utf8.ValidString(k) || !utf8.ValidString(metadata[k]) {
				return nil, nil, formatErr(path, "", "metadata %q is not valid UTF-8", k)
			}
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, k)
			buf = append(buf, ':')
			buf = appendJSONString(buf, metadata[k])
		}
		buf = append(buf, '}')
		first = false
	}
	for _, ti := range order {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = appendJSONString(buf, ti.Name)
		buf = append(buf, `:{"dtype":`...)
		buf = appendJSONString(buf, string(ti.DType))
		buf = append(buf, `,"shape":[`...)
		for i, d := range ti.Shape {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(buf, int64(d), 10)
		}
		buf = append(buf, `],"data_offsets":[`...)
		buf = strconv.AppendInt(buf, ti.DataOffsets[0], 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, ti.DataOffsets[1], 10)
		buf = append(buf, ']', '}')
	}
	buf = append(buf, '}')
	for len(buf)%8 != 0 {
		buf = append(buf, ' ')
	}
	if len(buf) > MaxHeaderSize {
		return nil, nil, formatErr(path, "", "header of %d bytes exceeds the %d-byte limit", len(buf), MaxHeaderSize)
	}
	return order, buf, nil
}

// appendJSONString quotes s the way serde_json does: only '"', '\\' and
// control characters below U+0020 are escaped; everything else is raw UTF-8.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			buf = append(buf, '\\', '"')
		case c == '\\':
			buf = append(buf, '\\', '\\')
		case c == '\b':
			buf = append(buf, '\\', 'b')
		case c == '\f':
			buf = append(buf, '\\', 'f')
		case c == '\n':
			buf = append(buf, '\\', 'n')
		case c == '\r':
			buf = append(buf, '\\', 'r')
		case c == '\t':
			buf = append(buf, '\\', 't')
		case c < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, '"')
}
