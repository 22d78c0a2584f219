package dataset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func opts(format string) Options {
	return Options{Format: format, ValidationFraction: 0.25, Seed: 1}
}

func TestFormats(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		format, file, body string
		want               Example
	}{
		{"text", "a.jsonl", `{"text":"hello world"}` + "\n" + `{"text":"second"}`, Example{Completion: "hello world"}},
		{"text", "a.txt", "para one\nline two\n\n\npara two\n", Example{Completion: "para one\nline two"}},
		{"alpaca", "a.jsonl", `{"instruction":"Add","input":"1 1","output":"2"}` + "\n" + `{"instruction":"Say hi","output":"hi"}`,
			Example{Prompt: fmt.Sprintf(alpacaWithInput, "Add", "1 1"), Completion: "2"}},
		{"chat", "a.jsonl", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}` + "\n" + `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`,
			Example{Prompt: "<user>\nhi\n<assistant>\n", Completion: "hello", Messages: []Message{{"user", "hi"}, {"assistant", "hello"}}}},
		{"classification", "a.csv", "text,label\ngreat film,pos\nawful,neg\n", Example{Prompt: "great film\nLabel:", Completion: " pos", Label: "pos"}},
	}
	for _, c := range cases {
		p := writeFile(t, dir, c.file, c.body)
		s, err := Prepare([]string{p}, opts(c.format))
		if err != nil {
			t.Fatalf("%s %s: %v", c.format, c.file, err)
		}
		all := append(append([]Example{}, s.Train...), s.Validation...)
		found := false
		for _, e := range all {
			found = found || reflect.DeepEqual(e, c.want)
		}
		if !found {
			t.Errorf("%s %s: %+v not among %+v", c.format, c.file, c.want, all)
		}
		if len(all) != 2 || s.Manifest.Train+s.Manifest.Validation != 2 {
			t.Errorf("%s: %d examples", c.format, len(all))
		}
	}
}

func TestBadRowsNamedByFileAndLine(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "rows.jsonl", `{"text":"ok"}
{"text":"also ok"}
{"text":
{"txt":"typo"}
{"text":""}
`)
	_, err := Prepare([]string{p}, opts("text"))
	var bad *BadDataError
	if !errors.As(err, &bad) {
		t.Fatalf("want BadDataError, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"rows.jsonl:3: invalid JSON", `rows.jsonl:4: unknown field "txt"`, `rows.jsonl:5: field "text" is empty`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	s, err := Prepare([]string{p}, Options{Format: "text", ValidationFraction: 0.5, MaxBadRows: 3})
	if err != nil {
		t.Fatalf("within threshold: %v", err)
	}
	if len(s.Manifest.BadRows) != 3 || s.Manifest.Train+s.Manifest.Validation != 2 {
		t.Fatalf("manifest %+v", s.Manifest)
	}
}

func TestChatValidation(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "c.jsonl", `{"messages":[{"role":"user","content":"hi"}]}
{"messages":[{"role":"robot","content":"x"},{"role":"assistant","content":"y"}]}
`)
	_, err := Prepare([]string{p}, opts("chat"))
	if err == nil || !strings.Contains(err.Error(), "c.jsonl:1: the last message must come from the assistant") ||
		!strings.Contains(err.Error(), `c.jsonl:2: messages[0]: unknown role "robot"`) {
		t.Fatalf("got %v", err)
	}
}

func TestDedupeAndDeterministicSplit(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "{\"text\":\"example %d\"}\n", i%30) // 10 duplicates
	}
	p := writeFile(t, dir, "d.jsonl", b.String())
	s1, err := Prepare([]string{p}, opts("text"))
	if err != nil {
		t.Fatal(err)
	}
	if s1.Manifest.Duplicates != 10 || s1.Manifest.Train+s1.Manifest.Validation != 30 {
		t.Fatalf("manifest %+v", s1.Manifest)
	}
	// Reversed file order gives the same split.
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	p2 := writeFile(t, dir, "r.jsonl", strings.Join(lines, "\n"))
	s2, err := Prepare([]string{p2}, opts("text"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s1.Validation, s2.Validation) || !reflect.DeepEqual(s1.Train, s2.Train) {
		t.Fatal("split depends on file order")
	}
	o := opts("text")
	o.Seed = 2
	s3, _ := Prepare([]string{p}, o)
	if reflect.DeepEqual(s1.Validation, s3.Validation) {
		t.Fatal("split ignores the seed")
	}
}

func TestSnapshotRoundTripIsByteStable(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "c.csv", "text,label\na,x\nb,y\nc,x\nd,y\n")
	s, err := Prepare([]string{p}, opts("classification"))
	if err != nil {
		t.Fatal(err)
	}
	out1, out2 := t.TempDir(), t.TempDir()
	if err := s.Write(out1); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSnapshot(out1)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Write(out2); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{TrainFile, ValidationFile, ManifestFile} {
		a, _ := os.ReadFile(filepath.Join(out1, f))
		b, _ := os.ReadFile(filepath.Join(out2, f))
		if string(a) != string(b) {
			t.Errorf("%s differs after round trip", f)
		}
	}
	if !reflect.DeepEqual(back.Manifest.Labels, []string{"x", "y"}) {
		t.Fatalf("labels %v", back.Manifest.Labels)
	}
}

func TestCSVFieldCountMismatch(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "c.csv", "text,label\na,x\nb\n")
	_, err := Prepare([]string{p}, opts("classification"))
	if err == nil || !strings.Contains(err.Error(), "c.csv:3") {
		t.Fatalf("got %v", err)
	}
}

func TestCSVWithByteOrderMark(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "bom.csv", "\ufefftext,label\ngood,pos\nbad,neg\n")
	if _, err := Prepare([]string{p}, opts("classification")); err != nil {
		t.Fatal(err)
	}
}

func TestDataErrorsAreTyped(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "one.jsonl", `{"text":"only one"}`)
	if _, err := Prepare([]string{p}, opts("text")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("too few examples: %v", err)
	}
	if _, err := Prepare([]string{filepath.Join(dir, "missing.jsonl")}, opts("text")); err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("a missing file is an I/O error, not invalid data: %v", err)
	}
}
