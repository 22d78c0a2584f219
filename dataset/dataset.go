package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// ErrInvalid is matched (errors.Is) by every error about the data itself
// (unknown format or file type, unreadable CSV, too few examples), as
// opposed to I/O errors, which may be transient.
var ErrInvalid = errors.New("invalid dataset")

// Formats lists the accepted dataset formats.
var Formats = []string{"text", "alpaca", "chat", "classification"}

// Example is one training example: the model reads Prompt and learns to
// produce Completion. Label is set for classification data. Chat data also
// keeps its Messages, which a model's own chat template renders (loss on
// every assistant turn); Prompt and Completion then hold the plain
// role-tagged layout used without a template.
type Example struct {
	Prompt     string    `json:"prompt"`
	Completion string    `json:"completion"`
	Label      string    `json:"label,omitempty"`
	Messages   []Message `json:"messages,omitempty"`
}

// Message is one turn of a chat example.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

func (e Example) key() [32]byte {
	h := sha256.New()
	io.WriteString(h, e.Prompt)
	h.Write([]byte{0})
	io.WriteString(h, e.Completion)
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// BadRow is one rejected row.
type BadRow struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

func (b BadRow) String() string { return fmt.Sprintf("%s:%d: %s", b.File, b.Line, b.Reason) }

// BadDataError reports more bad rows than the spec tolerates.
type BadDataError struct {
	Rows    []BadRow // the first bad rows found (at most 20)
	Total   int
	Allowed int
}

func (e *BadDataError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d bad rows (at most %d allowed)", e.Total, e.Allowed)
	for _, r := range e.Rows {
		b.WriteString("\n  ")
		b.WriteString(r.String())
	}
	if e.Total > len(e.Rows) {
		fmt.Fprintf(&b, "\n  ... and %d more", e.Total-len(e.Rows))
	}
	return b.String()
}

// Options configure Prepare.
type Options struct {
	Format             string
	ValidationFraction float64
	MaxBadRows         int
	Seed               int64

	// Limits (limits.go); 0: the defaults DefaultMaxFileBytes,
	// DefaultMaxLineBytes, DefaultMaxRows.
	MaxFileBytes int64 // one file, checked before it is read
	MaxLineBytes int64 // one row's raw text: a longer row is a bad row
	MaxRows      int   // rows over all files
}

// SourceFile records one input file.
type SourceFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Rows   int    `json:"rows"`
}

// Manifest describes a snapshot; it is written as manifest.json.
type Manifest struct {
	Format             string       `json:"format"`
	Seed               int64        `json:"seed"`
	ValidationFraction float64      `json:"validation_fraction"`
	Sources            []SourceFile `json:"sources"`
	RowsRead           int          `json:"rows_read"`
	BadRows            []BadRow     `json:"bad_rows"`
	Duplicates         int          `json:"duplicates"`
	Train              int          `json:"train"`
	Validation         int          `json:"validation"`
	Labels             []string     `json:"labels,omitempty"`
}

// Snapshot is a prepared dataset.
type Snapshot struct {
	Manifest   Manifest
	Train      []Example
	Validation []Example
}

// Prepare reads, validates, dedupes and splits the files.
func Prepare(files []string, opt Options) (*Snapshot, error) {
	if !validFormat(opt.Format) {
		return nil, fmt.Errorf("dataset: %w: unknown format %q (want one of %s)", ErrInvalid, opt.Format, strings.Join(Formats, ", "))
	}
	if opt.ValidationFraction <= 0 || opt.ValidationFraction >= 1 {
		return nil, fmt.Errorf("dataset: %w: validation fraction %v outside (0,1)", ErrInvalid, opt.ValidationFraction)
	}
	m := Manifest{Format: opt.Format, Seed: opt.Seed, ValidationFraction: opt.ValidationFraction, BadRows: []BadRow{}}
	var all []Example
	var bad []BadRow
	for _, f := range files {
		src, rows, fileBad, err := readFile(f, opt)
		if err != nil {
			return nil, err
		}
		if int64(m.RowsRead+src.Rows) > opt.maxRows() {
			return nil, fmt.Errorf("dataset: %s: %w: more than %d rows (Options.MaxRows)", f, ErrInvalid, opt.maxRows())
		}
		m.Sources = append(m.Sources, src)
		m.RowsRead += src.Rows
		all = append(all, rows...)
		bad = append(bad, fileBad...)
	}
	if len(bad) > opt.MaxBadRows {
		return nil, &BadDataError{Rows: bad[:min(len(bad), 20)], Total: len(bad), Allowed: opt.MaxBadRows}
	}
	m.BadRows = append(m.BadRows, bad...)

	seen := make(map[[32]byte]bool, len(all))
	unique := all[:0]
	for _, e := range all {
		k := e.key()
		if seen[k] {
			m.Duplicates++
			continue
		}
		seen[k] = true
		unique = append(unique, e)
	}
	if len(unique) < 2 {
		return nil, fmt.Errorf("dataset: %w: %d usable examples after validation and dedupe; need at least 2", ErrInvalid, len(unique))
	}

	s := &Snapshot{}
	s.Train, s.Validation = split(unique, opt.Seed, opt.ValidationFraction)
	m.Train, m.Validation = len(s.Train), len(s.Validation)
	if opt.Format == "classification" {
		labels := map[string]bool{}
		for _, e := range unique {
			labels[e.Label] = true
		}
		for l := range labels {
			m.Labels = append(m.Labels, l)
		}
		sort.Strings(m.Labels)
	}
	s.Manifest = m
	return s, nil
}

func validFormat(f string) bool {
	for _, x := range Formats {
		if x == f {
			return true
		}
	}
	return false
}

// split orders examples by a seeded hash and puts the first fraction (at
// least one example) in validation. The order within each split is the
// seeded order too, so it does not depend on the input file order.
func split(examples []Example, seed int64, fraction float64) (train, val []Example) {
	type keyed struct {
		rank [32]byte
		e    Example
	}
	ks := make([]keyed, len(examples))
	var seedBytes [8]byte
	binary.LittleEndian.PutUint64(seedBytes[:], uint64(seed))
	for i, e := range examples {
		k := e.key()
		ks[i] = keyed{sha256.Sum256(append(seedBytes[:], k[:]...)), e}
	}
	sort.Slice(ks, func(i, j int) bool { return string(ks[i].rank[:]) < string(ks[j].rank[:]) })
	nVal := int(float64(len(ks))*fraction + 0.5)
	nVal = max(1, min(nVal, len(ks)-1))
	for i, k := range ks {
		if i < nVal {
			val = append(val, k.e)
		} else {
			train = append(train, k.e)
		}
	}
	return train, val
}

func readFile(path string, opt Options) (SourceFile, []Example, []BadRow, error) {
	format, lineLimit := opt.Format, opt.maxLineBytes()
	src := SourceFile{Path: path}
	data, err := readInput(path, opt.maxFileBytes())
	if err != nil {
		return src, nil, nil, err
	}
	sum := sha256.Sum256(data)
	src.SHA256 = hex.EncodeToString(sum[:])
	name := filepath.Base(path)
	var rows []rawRow
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".json":
		if rows, err = jsonlRows(data, lineLimit); err != nil {
			return src, nil, nil, fmt.Errorf("dataset: %s: %w: %v", path, ErrInvalid, err)
		}
	case ".csv":
		rows, err = csvRows(data, lineLimit)
		if err != nil {
			return src, nil, nil, fmt.Errorf("dataset: %s: %w: %v", path, ErrInvalid, err)
		}
	case ".txt", ".md":
		if format != "text" {
			return src, nil, nil, fmt.Errorf("dataset: %s: %w: plain text files hold format text only, not %s", path, ErrInvalid, format)
		}
		rows = paragraphRows(data, lineLimit)
	default:
		return src, nil, nil, fmt.Errorf("dataset: %s: %w: unknown file type %q (want .jsonl, .csv or .txt)", path, ErrInvalid, filepath.Ext(path))
	}
	var examples []Example
	var bad []BadRow
	for _, r := range rows {
		src.Rows++
		if r.err != nil {
			bad = append(bad, BadRow{File: name, Line: r.line, Reason: r.err.Error()})
			continue
		}
		e, err := toExample(format, r.fields)
		if err == nil {
			err = checkDecoded(r.fields) // a JSON escape such as \u0000 passes checkRowText
		}
		if err != nil {
			bad = append(bad, BadRow{File: name, Line: r.line, Reason: err.Error()})
			continue
		}
		examples = append(examples, e)
	}
	return src, examples, bad, nil
}

// rawRow is one decoded row before format validation.
type rawRow struct {
	line   int
	fields map[string]any
	err    error
}

func jsonlRows(data []byte, lineLimit int64) ([]rawRow, error) {
	var rows []rawRow
	line := 0
	for len(data) > 0 {
		line++
		raw := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		text := bytes.TrimSpace(raw)
		if len(text) == 0 {
			continue
		}
		if err := checkRowText(text, lineLimit); err != nil { // before decoding: the decoder would replace bad UTF-8
			rows = append(rows, rawRow{line: line, err: err})
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(text, &fields); err != nil {
			rows = append(rows, rawRow{line: line, err: fmt.Errorf("invalid JSON object: %v", err)})
			continue
		}
		rows = append(rows, rawRow{line: line, fields: fields})
	}
	return rows, nil
}

func csvRows(data []byte, lineLimit int64) ([]rawRow, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("reading CSV header: %w", err)
	}
	if len(header) > 0 { // a UTF-8 byte order mark, as spreadsheet exports write
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	var rows []rawRow
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				rows = append(rows, rawRow{line: pe.StartLine, err: fmt.Errorf("invalid CSV: %v", pe.Err)})
				continue
			}
			return nil, err
		}
		line, _ := r.FieldPos(0) // only for a record read: FieldPos panics on the empty one a parse error leaves
		if len(rec) != len(header) {
			rows = append(rows, rawRow{line: line, err: fmt.Errorf("%d fields, header has %d", len(rec), len(header))})
			continue
		}
		if err := checkRecord(rec, lineLimit); err != nil {
			rows = append(rows, rawRow{line: line, err: err})
			continue
		}
		fields := make(map[string]any, len(header))
		for i, h := range header {
			fields[strings.TrimSpace(h)] = rec[i]
		}
		rows = append(rows, rawRow{line: line, fields: fields})
	}
	return rows, nil
}

func paragraphRows(data []byte, lineLimit int64) []rawRow {
	var rows []rawRow
	var para []string
	start := 0
	flush := func() {
		if len(para) > 0 {
			text := strings.Join(para, "\n")
			if err := checkRowText([]byte(text), lineLimit); err != nil {
				rows = append(rows, rawRow{line: start, err: err})
			} else {
				rows = append(rows, rawRow{line: start, fields: map[string]any{"text": text}})
			}
			para = nil
		}
	}
	for i, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == "" {
			flush()
			continue
		}
		if para == nil {
			start = i + 1
		}
		para = append(para, strings.TrimRight(l, "\r"))
	}
	flush()
	return rows
}

func stringField(fields map[string]any, name string, required bool) (string, error) {
	v, ok := fields[name]
	if !ok || v == nil {
		if required {
			return "", fmt.Errorf("missing field %q", name)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("field %q is %T, want a string", name, v)
	}
	if required && strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("field %q is empty", name)
	}
	return s, nil
}

func allowOnly(fields map[string]any, names ...string) error {
	for _, k := range slices.Sorted(maps.Keys(fields)) { // sorted: the reason goes into the manifest, whose bytes are digested
		known := false
		for _, n := range names {
			known = known || k == n
		}
		if !known {
			return fmt.Errorf("unknown field %q (want %s)", k, strings.Join(names, ", "))
		}
	}
	return nil
}

// Prompt templates, the widely used Alpaca and a plain role-tagged chat layout.
const (
	alpacaWithInput = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:\n"
	alpacaNoInput   = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n%s\n\n### Response:\n"
)

func toExample(format string, f map[string]any) (Example, error) {
	switch format {
	case "text":
		if err := allowOnly(f, "text"); err != nil {
			return Example{}, err
		}
		t, err := stringField(f, "text", true)
		return Example{Completion: t}, err
	case "alpaca":
		if err := allowOnly(f, "instruction", "input", "output"); err != nil {
			return Example{}, err
		}
		ins, err := stringField(f, "instruction", true)
		if err != nil {
			return Example{}, err
		}
		in, err := stringField(f, "input", false)
		if err != nil {
			return Example{}, err
		}
		out, err := stringField(f, "output", true)
		if err != nil {
			return Example{}, err
		}
		prompt := fmt.Sprintf(alpacaNoInput, ins)
		if strings.TrimSpace(in) != "" {
			prompt = fmt.Sprintf(alpacaWithInput, ins, in)
		}
		return Example{Prompt: prompt, Completion: out}, nil
	case "chat":
		if err := allowOnly(f, "messages"); err != nil {
			return Example{}, err
		}
		return chatExample(f["messages"])
	case "classification":
		if err := allowOnly(f, "text", "label"); err != nil {
			return Example{}, err
		}
		t, err := stringField(f, "text", true)
		if err != nil {
			return Example{}, err
		}
		l, err := labelField(f)
		if err != nil {
			return Example{}, err
		}
		return Example{Prompt: ClassificationPrompt(t), Completion: " " + l, Label: l}, nil
	}
	return Example{}, fmt.Errorf("unknown format %q", format)
}

// ClassificationPrompt is the prompt a classification example's text gets;
// the completion is a space and the label.
func ClassificationPrompt(text string) string { return text + "\nLabel:" }

func labelField(f map[string]any) (string, error) {
	switch v := f["label"].(type) {
	case string:
		if strings.TrimSpace(v) == "" {
			return "", errors.New(`field "label" is empty`)
		}
		if strings.ContainsAny(v, "\n\r") {
			return "", errors.New(`field "label" spans lines`)
		}
		return strings.TrimSpace(v), nil
	case float64:
		return fmt.Sprint(v), nil
	case nil:
		return "", errors.New(`missing field "label"`)
	default:
		return "", fmt.Errorf(`field "label" is %T, want a string or number`, v)
	}
}

var chatRoles = map[string]bool{"system": true, "user": true, "assistant": true}

func chatExample(v any) (Example, error) {
	msgs, ok := v.([]any)
	if !ok || len(msgs) == 0 {
		return Example{}, errors.New(`field "messages" must be a non-empty list`)
	}
	var b strings.Builder
	last := -1
	type turn struct{ role, content string }
	turns := make([]turn, len(msgs))
	for i, m := range msgs {
		obj, ok := m.(map[string]any)
		if !ok {
			return Example{}, fmt.Errorf("messages[%d] is not an object", i)
		}
		if err := allowOnly(obj, "role", "content"); err != nil {
			return Example{}, fmt.Errorf("messages[%d]: %w", i, err)
		}
		role, err := stringField(obj, "role", true)
		if err != nil {
			return Example{}, fmt.Errorf("messages[%d]: %w", i, err)
		}
		if !chatRoles[role] {
			return Example{}, fmt.Errorf("messages[%d]: unknown role %q (want system, user or assistant)", i, role)
		}
		content, err := stringField(obj, "content", true)
		if err != nil {
			return Example{}, fmt.Errorf("messages[%d]: %w", i, err)
		}
		turns[i] = turn{role, content}
		if role == "assistant" {
			last = i
		}
	}
	if last != len(turns)-1 {
		return Example{}, errors.New("the last message must come from the assistant")
	}
	msgsOut := make([]Message, len(turns))
	for i, t := range turns {
		msgsOut[i] = Message{Role: t.role, Content: t.content}
	}
	for _, t := range turns[:last] {
		fmt.Fprintf(&b, "<%s>\n%s\n", t.role, t.content)
	}
	b.WriteString("<assistant>\n")
	return Example{Prompt: b.String(), Completion: turns[last].content, Messages: msgsOut}, nil
}
