package dataset

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"
)

// TestSpecialFilesAreInvalidAtOnce: a FIFO (a plain read would block for
// ever), a symlink to /dev/zero (it never ends), a folder and a symlink loop
// are invalid data, refused before any read, so the activity does not retry
// them.
func TestSpecialFilesAreInvalidAtOnce(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.jsonl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	zero := filepath.Join(dir, "zero.jsonl")
	loop := filepath.Join(dir, "loop.jsonl")
	sub := filepath.Join(dir, "sub.jsonl")
	for _, err := range []error{os.Symlink("/dev/zero", zero), os.Symlink(loop, loop), os.Mkdir(sub, 0o755)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{fifo, zero, loop, sub} {
		_, err := Prepare([]string{p}, opts("text"))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), p) {
			t.Errorf("Prepare(%s) = %v, want ErrInvalid naming the file", p, err)
		}
	}
}

// TestOversizedInputIsRefusedUnread: a file over MaxFileBytes is refused by
// its size; too many rows end the run with ErrInvalid naming the file.
func TestOversizedInputIsRefusedUnread(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "big.jsonl", strings.Repeat(`{"text":"row"}`+"\n", 100))
	o := opts("text")
	o.MaxFileBytes = 1000
	if _, err := Prepare([]string{p}, o); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "over the 1000-byte limit") {
		t.Errorf("big file: %v", err)
	}
	o = opts("text")
	o.MaxRows = 50
	if _, err := Prepare([]string{p}, o); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "more than 50 rows") {
		t.Errorf("too many rows: %v", err)
	}
}

// TestHostileRowsAreBadRowsNamingTheLine: an over-long line, a NUL byte and
// invalid UTF-8 (which the JSON decoder would turn into U+FFFD and train
// on) are bad rows that name file and line, in each file type, and the rows
// around them are kept.
func TestHostileRowsAreBadRowsNamingTheLine(t *testing.T) {
	dir := t.TempDir()
	long := `{"text":"` + strings.Repeat("x", 2<<20) + `"}`
	files := []struct {
		name, body string
		want       []string
	}{
		{"rows.jsonl", `{"text":"one"}` + "\n" + long + "\n" + `{"text":"n\u0000ul"}` + "\n{\"text\":\"bad \xff utf8\"}\n" + "{\"text\":\"raw \x00 nul\"}\n" + `{"text":"two"}`,
			[]string{"rows.jsonl:2: row is 2097163 bytes, over the 1048576-byte limit", "rows.jsonl:3: field \"text\" holds a NUL character", "rows.jsonl:4: invalid UTF-8 at byte 13", "rows.jsonl:5: NUL byte at byte 13"}},
		{"rows.csv", "text\none\n\"bad \xff\"\ntwo\n", []string{"rows.csv:3: field 1: invalid UTF-8 at byte 4"}},
		{"rows.txt", "one\n\nbad \xfe\n\ntwo\n", []string{"rows.txt:3: invalid UTF-8 at byte 4"}},
	}
	for _, f := range files {
		p := writeFile(t, dir, f.name, f.body)
		o := opts("text")
		o.MaxLineBytes = 1 << 20
		_, err := Prepare([]string{p}, o)
		var bad *BadDataError
		if !errors.As(err, &bad) {
			t.Fatalf("%s: %v, want BadDataError", f.name, err)
		}
		for _, w := range f.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error lacks %q:\n%v", f.name, w, err)
			}
		}
		o.MaxBadRows = len(f.want)
		s, err := Prepare([]string{p}, o)
		if err != nil {
			t.Fatalf("%s within the threshold: %v", f.name, err)
		}
		if n := s.Manifest.Train + s.Manifest.Validation; n != 2 {
			t.Errorf("%s: %d examples kept, want the 2 good rows", f.name, n)
		}
	}
}

// FuzzPrepare feeds arbitrary bytes to Prepare as a JSONL, CSV or text file
// of each format. It must never panic; its only errors are bad rows and
// invalid data (never an I/O error for a regular file); whatever it keeps is
// valid UTF-8 without NUL bytes. The seeds run as a normal test in CI; fuzz
// with
//
//	go test ./dataset -run '^$' -fuzz FuzzPrepare -fuzztime 10m
func FuzzPrepare(f *testing.F) {
	f.Add([]byte("{\"text\":\"a\"}\n{\"text\":\"b\"}\n"), uint8(0))
	f.Add([]byte(`{"instruction":"i","input":"","output":"o"}`+"\n"+`{"instruction":"j","output":"p"}`), uint8(1))
	f.Add([]byte(`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}`+"\n"+`{"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"},{"role":"assistant","content":"a"}]}`), uint8(2))
	f.Add([]byte("text,label\nhello,pos\nbye,neg\n\"x\xff\",1\n"), uint8(7))
	f.Add([]byte("para one\n\npara \x00 two\n\nthree\n"), uint8(8))
	f.Add([]byte("{\"text\":\"\xff\"}\n{\"text\":\n"), uint8(0))
	dir := f.TempDir()
	exts := []string{".jsonl", ".csv", ".txt"}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		format := Formats[int(sel)%len(Formats)]
		ext := exts[int(sel/4)%len(exts)]
		path := filepath.Join(dir, "f"+ext)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Prepare([]string{path}, Options{Format: format, ValidationFraction: 0.5, MaxBadRows: 1 << 20, MaxLineBytes: 1 << 16})
		if err != nil {
			var bad *BadDataError
			if !errors.As(err, &bad) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is neither bad rows nor invalid data", err)
			}
			return
		}
		for _, e := range append(s.Train, s.Validation...) {
			for _, v := range []string{e.Prompt, e.Completion, e.Label} {
				if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
					t.Fatalf("kept %q", v)
				}
			}
		}
	})
}

// TestCSVParseErrorIsABadRow: a record the CSV reader cannot parse (here a
// quote left open at the end of the file, found by FuzzPrepare) is a bad row
// naming its line; it used to panic in csv.Reader.FieldPos, which was asked
// for the position of a field the failed record does not have.
func TestCSVParseErrorIsABadRow(t *testing.T) {
	p := writeFile(t, t.TempDir(), "open.csv", "text\nfine\n\"open")
	_, err := Prepare([]string{p}, opts("text"))
	var bad *BadDataError
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "open.csv:3: invalid CSV") {
		t.Fatalf("Prepare = %v, want a bad row at open.csv:3", err)
	}
}

// TestBadRowReasonIsDeterministic: the reason of a row with several unknown
// fields names the same one every time (the first in order), so the
// manifest, and the snapshot's digest, do not depend on map iteration.
func TestBadRowReasonIsDeterministic(t *testing.T) {
	p := writeFile(t, t.TempDir(), "rows.jsonl", `{"text":"a"}`+"\n"+`{"text":"b"}`+"\n"+`{"zz":1,"yy":2,"xx":3,"ww":4,"text":"c"}`)
	o := opts("text")
	o.MaxBadRows = 1
	for range 20 {
		s, err := Prepare([]string{p}, o)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Manifest.BadRows[0].Reason; !strings.Contains(got, `unknown field "ww"`) {
			t.Fatalf("reason %q, want the first unknown field in order", got)
		}
	}
}
