package safetensors

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Uint16 returns the named BF16 or F16 tensor's elements as a new []uint16
// of raw bits (one 16-bit copy, not widened), so that a caller can keep a
// frozen weight at 2 bytes a parameter after the file is closed.
func (f *File) Uint16(name string) ([]uint16, error) {
	b, err := f.Bytes(name)
	if err != nil {
		return nil, err
	}
	ti := f.infos[name]
	if ti.DType != BF16 && ti.DType != F16 {
		return nil, fmt.Errorf("safetensors: %s: tensor %q is %s, not BF16 or F16: %w", f.path, name, ti.DType, errUnsupported)
	}
	out := make([]uint16, len(b)/2)
	if nativeLittleEndian && len(out) > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), len(b)), b)
		return out, nil
	}
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return out, nil
}

// Release tells the kernel that the named tensor's pages of the mapping
// will not be read again (madvise MADV_DONTNEED on the whole pages inside
// its byte range), so that a loader copying tensor by tensor does not hold
// the whole file resident as well as its copies. The data stays readable
// (it is read back from the file on the next access); Release is a no-op for
// a file that is not memory-mapped.
func (f *File) Release(name string) {
	ti, ok := f.infos[name]
	if !ok || f.mapped == nil || f.data == nil {
		return
	}
	base := uintptr(unsafe.Pointer(&f.mapped[0]))
	start := uintptr(unsafe.Pointer(&f.data[0])) - base + uintptr(ti.DataOffsets[0])
	end := start + uintptr(ti.DataOffsets[1]-ti.DataOffsets[0])
	page := uintptr(os.Getpagesize())
	lo, hi := (start+page-1)/page*page, end/page*page
	if hi <= lo {
		return
	}
	_ = unix.Madvise(f.mapped[lo:hi], unix.MADV_DONTNEED)
}

// Uint16 returns the named BF16 or F16 tensor's raw bits (see File.Uint16).
func (c *Checkpoint) Uint16(name string) ([]uint16, error) {
	f := c.fileOf(name)
	if f == nil {
		return nil, fmt.Errorf("safetensors: %s: tensor %q not found", c.dir, name)
	}
	return f.Uint16(name)
}

// Release drops the named tensor's pages from memory (see File.Release).
func (c *Checkpoint) Release(name string) {
	if f := c.fileOf(name); f != nil {
		f.Release(name)
	}
}
