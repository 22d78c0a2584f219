package tokenizer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// A reader of GGUF metadata (llama.cpp's ggml/include/gguf.h and
// docs/gguf.md: magic "GGUF", version, tensor count, key-value count, then
// the key-value pairs), enough to read llama.cpp's vocab-only files.

const (
	ggufUint8 = iota
	ggufInt8
	ggufUint16
	ggufInt16
	ggufUint32
	ggufInt32
	ggufFloat32
	ggufBool
	ggufString
	ggufArray
	ggufUint64
	ggufInt64
	ggufFloat64
)

type ggufReader struct {
	r   *bufio.Reader
	err error
}

func (g *ggufReader) read(v any) {
	if g.err == nil {
		g.err = binary.Read(g.r, binary.LittleEndian, v)
	}
}

func (g *ggufReader) u64() uint64 { var v uint64; g.read(&v); return v }
func (g *ggufReader) u32() uint32 { var v uint32; g.read(&v); return v }

func (g *ggufReader) str() string {
	n := g.u64()
	if g.err != nil {
		return ""
	}
	if n > 1<<20 {
		g.err = fmt.Errorf("string of %d bytes", n)
		return ""
	}
	b := make([]byte, n)
	_, g.err = io.ReadFull(g.r, b)
	return string(b)
}

func (g *ggufReader) value(typ uint32) any {
	switch typ {
	case ggufUint8, ggufInt8, ggufBool:
		var v uint8
		g.read(&v)
		if typ == ggufBool {
			return v != 0
		}
		return int64(v)
	case ggufUint16, ggufInt16:
		var v uint16
		g.read(&v)
		return int64(v)
	case ggufUint32:
		return int64(g.u32())
	case ggufInt32:
		return int64(int32(g.u32()))
	case ggufFloat32:
		return float64(math.Float32frombits(g.u32()))
	case ggufUint64, ggufInt64:
		return int64(g.u64())
	case ggufFloat64:
		return math.Float64frombits(g.u64())
	case ggufString:
		return g.str()
	case ggufArray:
		et := g.u32()
		n := g.u64()
		if n > 1<<24 {
			g.err = fmt.Errorf("array of %d items", n)
			return nil
		}
		out := make([]any, 0, n)
		for i := uint64(0); i < n && g.err == nil; i++ {
			out = append(out, g.value(et))
		}
		return out
	}
	g.err = fmt.Errorf("GGUF value type %d", typ)
	return nil
}

// readGGUFMetadata returns the key-value pairs of a GGUF file.
func readGGUFMetadata(path string) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	g := &ggufReader{r: bufio.NewReaderSize(f, 1<<20)}
	var magic [4]byte
	g.read(&magic)
	if g.err == nil && string(magic[:]) != "GGUF" {
		return nil, errors.New("not a GGUF file")
	}
	if v := g.u32(); g.err == nil && v != 3 {
		return nil, fmt.Errorf("GGUF version %d (want 3)", v)
	}
	g.u64() // tensors
	n := g.u64()
	kv := make(map[string]any, n)
	for i := uint64(0); i < n && g.err == nil; i++ {
		k := g.str()
		kv[k] = g.value(g.u32())
	}
	if g.err != nil {
		return nil, fmt.Errorf("%s: %w", path, g.err)
	}
	return kv, nil
}

func ggufStrings(kv map[string]any, key string) []string {
	a, _ := kv[key].([]any)
	out := make([]string, len(a))
	for i, v := range a {
		out[i], _ = v.(string)
	}
	return out
}

func ggufNumbers(kv map[string]any, key string) []float64 {
	a, _ := kv[key].([]any)
	out := make([]float64, len(a))
	for i, v := range a {
		switch x := v.(type) {
		case float64:
			out[i] = x
		case int64:
			out[i] = float64(x)
		}
	}
	return out
}
