package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// MaxHeaderSize is the largest JSON header accepted, as in the reference
// implementation (100 MB).
const MaxHeaderSize = 100_000_000

const metadataKey = "__metadata__"

// TensorInfo describes one tensor in a file. DataOffsets is the [begin, end)
// byte range relative to the start of the data buffer (after the header).
type TensorInfo struct {
	Name        string
	DType       DType
	Shape       []int
	DataOffsets [2]int64
}

// NumElements is the product of the shape (1 for a scalar).
func (ti TensorInfo) NumElements() int {
	n := 1
	for _, d := range ti.Shape {
		n *= d
	}
	return n
}

// File is one safetensors file, mapped into memory and validated. Its
// methods are safe for concurrent use until Close; slices returned by Bytes
// are views into the mapping and must not be used after Close.
type File struct {
	path     string
	mapped   []byte // the whole file when memory-mapped, else nil
	data     []byte // the data buffer (after the header)
	infos    map[string]TensorInfo
	ordered  []TensorInfo // by data offset
	names    []string     // sorted
	metadata map[string]string
}

// Open maps the safetensors file at path into memory and validates its
// header against the file size. Close releases the mapping.
func Open(path string) (*File, error) {
	fh, st, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	size := st.Size()
	if size < 8 {
		return nil, formatErr(path, "", "file is %d bytes, shorter than the 8-byte header length", size)
	}
	if size != int64(int(size)) {
		return nil, formatErr(path, "", "file of %d bytes is too large to map", size)
	}
	mapped, err := unix.Mmap(int(fh.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: mmap: %w", path, err)
	}
	f, err := parse(path, mapped)
	if err != nil {
		_ = unix.Munmap(mapped)
		return nil, err
	}
	f.mapped = mapped
	return f, nil
}

// FromBytes parses a whole safetensors file held in memory, with the same
// validation as Open; name is used in error messages. The File keeps
// references into b.
func FromBytes(name string, b []byte) (*File, error) { return parse(name, b) }

// Close releases the memory mapping. Views returned by Bytes become invalid.
func (f *File) Close() error {
	f.data = nil
	if f.mapped == nil {
		return nil
	}
	m := f.mapped
	f.mapped = nil
	if err := unix.Munmap(m); err != nil {
		return fmt.Errorf("safetensors: %s: munmap: %w", f.path, err)
	}
	return nil
}

// Path returns the path (or name) the file was opened with.
func (f *File) Path() string { return f.path }

// Names returns the tensor names, sorted.
func (f *File) Names() []string { return append([]string(nil), f.names...) }

// Infos returns every tensor's description in file (data offset) order.
func (f *File) Infos() []TensorInfo { return append([]TensorInfo(nil), f.ordered...) }

// Info returns the description of the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	ti, ok := f.infos[name]
	return ti, ok
}

// Metadata returns a copy of the "__metadata__" map (nil when absent).
func (f *File) Metadata() map[string]string {
	if f.metadata == nil {
		return nil
	}
	m := make(map[string]string, len(f.metadata))
	for k, v := range f.metadata {
		m[k] = v
	}
	return m
}

// Bytes returns the named tensor's raw little-endian bytes, a read-only view
// into the file; do not modify it or use it after Close.
func (f *File) Bytes(name string) ([]byte, error) {
	ti, ok := f.infos[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: tensor %q not found", f.path, name)
	}
	if f.data == nil {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: file is closed", f.path, name)
	}
	b, e := ti.DataOffsets[0], ti.DataOffsets[1]
	return f.data[b:e:e], nil
}

// Float32 returns the named tensor converted to a new []float32; the dtype
// must be F32, F16, BF16 or F64.
func (f *File) Float32(name string) ([]float32, error) {
	b, err := f.Bytes(name)
	if err != nil {
		return nil, err
	}
	ti := f.infos[name]
	if !ti.DType.IsFloat() {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: cannot read dtype %s as float32 (want F32, F16, BF16 or F64): %w",
			f.path, name, ti.DType, errUnsupported)
	}
	return DecodeFloat32(ti.DType, b)
}

var errUnsupported = errors.New("unsupported dtype")

// ErrUnsupportedDType is matched (errors.Is) when a tensor's dtype cannot be
// converted to float32.
var ErrUnsupportedDType = errUnsupported

type rawTensor struct {
	DType       *string   `json:"dtype"`
	Shape       *[]uint64 `json:"shape"`
	DataOffsets *[]uint64 `json:"data_offsets"`
}

func parse(path string, buf []byte) (*File, error) {
	if len(buf) < 8 {
		return nil, formatErr(path, "", "file is %d bytes, shorter than the 8-byte header length", len(buf))
	}
	n := binary.LittleEndian.Uint64(buf[:8])
	if n > MaxHeaderSize {
		return nil, formatErr(path, "", "header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(len(buf)-8) {
		return nil, formatErr(path, "", "header length %d runs past the end of the %d-byte file (truncated?)", n, len(buf))
	}
	hdr := buf[8 : 8+n]
	data := buf[8+n:]
	infos, meta, err := parseHeader(path, hdr)
	if err != nil {
		return nil, err
	}
	ordered, err := validate(path, infos, int64(len(data)))
	if err != nil {
		return nil, err
	}
	f := &File{path: path, data: data, infos: make(map[string]TensorInfo, len(infos)), ordered: ordered, metadata: meta}
	for _, ti := range ordered {
		f.infos[ti.Name] = ti
		f.names = append(f.names, ti.Name)
	}
	sort.Strings(f.names)
	return f, nil
}

func parseHeader(path string, hdr []byte) ([]TensorInfo, map[string]string, error) {
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, nil, formatErr(path, "", "header does not start with '{'")
	}
	if !utf8.Valid(hdr) {
		return nil, nil, formatErr(path, "", "header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if _, err := dec.Token(); err != nil { // the '{' checked above
		return nil, nil, formatErr(path, "", "header JSON: %v", err)
	}
	var (
		infos []TensorInfo
		meta  map[string]string
		seen  = make(map[string]bool)
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, formatErr(path, "", "header JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, formatErr(path, "", "header JSON: unexpected %v", tok)
		}
		if seen[name] {
			return nil, nil, formatErr(path, name, "duplicate name in header")
		}
		seen[name] = true
		if name == metadataKey {
			var m map[string]string
			if err := dec.Decode(&m); err != nil {
				return nil, nil, formatErr(path, "", "%s is not a map of strings: %v", metadataKey, err)
			}
			meta = m
			continue
		}
		var raw rawTensor
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, formatErr(path, name, "header entry: %v", err)
		}
		ti, err := checkEntry(path, name, raw)
		if err != nil {
			return nil, nil, err
		}
		infos = append(infos, ti)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, nil, formatErr(path, "", "header JSON: %v", err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, nil, formatErr(path, "", "header JSON: trailing data: %v", err)
		}
		return nil, nil, formatErr(path, "", "header JSON: trailing data %v after the object", tok)
	}
	return infos, meta, nil
}

func checkEntry(path, name string, raw rawTensor) (TensorInfo, error) {
	switch {
	case raw.DType == nil:
		return TensorInfo{}, formatErr(path, name, `missing "dtype"`)
	case raw.Shape == nil:
		return TensorInfo{}, formatErr(path, name, `missing "shape"`)
	case raw.DataOffsets == nil:
		return TensorInfo{}, formatErr(path, name, `missing "data_offsets"`)
	case len(*raw.DataOffsets) != 2:
		return TensorInfo{}, formatErr(path, name, `"data_offsets" has %d values, want 2`, len(*raw.DataOffsets))
	}
	dt := DType(*raw.DType)
	if !dt.Valid() {
		return TensorInfo{}, formatErr(path, name, "unknown dtype %q", *raw.DType)
	}
	begin, end := (*raw.DataOffsets)[0], (*raw.DataOffsets)[1]
	const maxOff = uint64(1<<63 - 1)
	if begin > maxOff || end > maxOff {
		return TensorInfo{}, formatErr(path, name, "data_offsets [%d,%d) out of range", begin, end)
	}
	if end < begin {
		return TensorInfo{}, formatErr(path, name, "data_offsets [%d,%d) end before begin", begin, end)
	}
	nelem := uint64(1)
	shape := make([]int, len(*raw.Shape))
	overflow := false
	for i, d := range *raw.Shape {
		if d > uint64(maxInt) {
			overflow = true
			break
		}
		shape[i] = int(d)
		hi, lo := bits.Mul64(nelem, d)
		if hi != 0 {
			overflow = true
			break
		}
		nelem = lo
	}
	var nbytes uint64
	if !overflow {
		hi, lo := bits.Mul64(nelem, uint64(dt.Size()))
		overflow = hi != 0 || lo > maxOff
		nbytes = lo
	}
	if overflow {
		return TensorInfo{}, formatErr(path, name, "shape %v of %s overflows", *raw.Shape, dt)
	}
	if end-begin != nbytes {
		return TensorInfo{}, formatErr(path, name, "shape %v of %s needs %d bytes, but data_offsets [%d,%d) hold %d",
			*raw.Shape, dt, nbytes, begin, end, end-begin)
	}
	return TensorInfo{Name: name, DType: dt, Shape: shape, DataOffsets: [2]int64{int64(begin), int64(end)}}, nil
}

const maxInt = int(^uint(0) >> 1)

// validate checks that the byte ranges tile [0, dataLen) exactly and returns
// the tensors in offset order.
func validate(path string, infos []TensorInfo, dataLen int64) ([]TensorInfo, error) {
	for _, ti := range infos {
		if ti.DataOffsets[1] > dataLen {
			return nil, formatErr(path, ti.Name, "data_offsets [%d,%d) run past the %d-byte data buffer (truncated file?)",
				ti.DataOffsets[0], ti.DataOffsets[1], dataLen)
		}
	}
	ordered := append([]TensorInfo(nil), infos...)
	sort.SliceStable(ordered, func(i, j int) bool {
		a, b := ordered[i].DataOffsets, ordered[j].DataOffsets
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		if a[1] != b[1] {
			return a[1] < b[1]
		}
		return ordered[i].Name < ordered[j].Name
	})
	var pos int64
	prev := ""
	for _, ti := range ordered {
		b, e := ti.DataOffsets[0], ti.DataOffsets[1]
		if b < pos {
			return nil, formatErr(path, ti.Name, "data_offsets [%d,%d) overlap tensor %q, which ends at %d", b, e, prev, pos)
		}
		if b > pos {
			return nil, formatErr(path, ti.Name, "data_offsets [%d,%d) leave a hole: bytes [%d,%d) belong to no tensor", b, e, pos, b)
		}
		pos = e
		prev = ti.Name
	}
	if pos != dataLen {
		return nil, formatErr(path, "", "tensors cover %d bytes of the %d-byte data buffer: bytes [%d,%d) belong to no tensor", pos, dataLen, pos, dataLen)
	}
	return ordered, nil
}
