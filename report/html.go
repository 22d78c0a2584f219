package report

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"os"
)

// Page is what the HTML report shows.
type Page struct {
	Title string
	// Facts are label/value rows shown first (digests, split, rank).
	Facts []Fact
	// Classification adds the accuracy column.
	Classification bool
	Metrics        []MetricsRow
	// Images are PNG files (the loss curve, the rank spectra), embedded so
	// the page is one self-contained file.
	Images  []Image
	Samples []Sample
}

// Fact is one label/value row.
type Fact struct{ Label, Value string }

// MetricsRow is one model's held-out scores.
type MetricsRow struct {
	Model      string
	Loss       float64
	Perplexity float64
	Accuracy   float64
	Tokens     int
	Examples   int
}

// Image is a PNG shown with a caption.
type Image struct {
	Caption string
	PNG     []byte
}

// Sample is a prompt with the base model's and the adapter's completions.
type Sample struct{ Prompt, Base, Adapter string }

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"pngURL": func(b []byte) template.URL {
		// A data: URL of bytes this package was given as PNG; html/template
		// refuses data: URLs unless typed, which is done here only.
		return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b))
	},
}).Parse(pageTemplate))

// WriteHTML renders the page to w.
func WriteHTML(w io.Writer, p Page) error {
	for _, im := range p.Images {
		if !bytes.HasPrefix(im.PNG, []byte("\x89PNG\r\n\x1a\n")) {
			return fmt.Errorf("report: image %q is not a PNG", im.Caption)
		}
	}
	return page.Execute(w, p)
}

// ImageFile reads a PNG for the page; a missing file is no image (a run
// without a loss curve has none), other errors are returned.
func ImageFile(caption, path string) ([]Image, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []Image{{Caption: caption, PNG: b}}, nil
}

// SaveHTML renders the page to path.
func SaveHTML(p Page, path string) error {
	var b bytes.Buffer
	if err := WriteHTML(&b, p); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
