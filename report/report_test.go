package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/loraflow/loraflow/lora/diagnose"
)

// TestSmoothIsTensorBoards checks Smooth against values worked by hand from
// TensorBoard's formula (tolerance 1e-12): w = 0.5 over 1, 2, 3 gives
// last = 0.5, 1.25, 2.125 and debias 0.5, 0.75, 0.875.
func TestSmoothIsTensorBoards(t *testing.T) {
	got := Smooth([]float64{1, 2, 3}, 0.5)
	want := []float64{1, 1.25 / 0.75, 2.125 / 0.875}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Errorf("Smooth[%d] = %.15g, want %.15g", i, got[i], want[i])
		}
	}
	// The debias term keeps a constant series constant from its first point.
	for i, v := range Smooth([]float64{4, 4, 4, 4}, 0.9) {
		if math.Abs(v-4) > 1e-12 {
			t.Errorf("constant series smoothed to %v at %d", v, i)
		}
	}
	if s := Smooth([]float64{1, math.NaN(), 3}, 0.5); !math.IsNaN(s[1]) || math.Abs(s[2]-(0.5*0.5+1.5)/0.75) > 1e-12 {
		t.Errorf("NaN handling: %v", s)
	}
}

func noisyLosses(n int) []float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	v := make([]float64, n)
	for i := range v {
		v[i] = 2 + 3*math.Exp(-float64(i)/80) + 0.4*rng.NormFloat64()
	}
	return v
}

// TestLossCurveLegendIsClearOfTheData: no point of any curve or reference
// line reaches the legend's band, so no line strikes the legend through.
func TestLossCurveLegendIsClearOfTheData(t *testing.T) {
	c := LossCurve{Losses: noisyLosses(600), Steps: 600, BaseHeldOut: 5.4, AdapterHeldOut: 2.1,
		HeldOut: []Point{{100, 5.9}, {200, 3.2}, {300, 2.5}, {600, 2.1}}}
	p, err := c.Plot()
	if err != nil {
		t.Fatal(err)
	}
	canvas := draw.New(vgimg.New(vg.Length(WidthPx)*vg.Inch/dpi, vg.Length(HeightPx)*vg.Inch/dpi))
	data := p.DataCanvas(canvas)
	_, y := p.Transforms(&data)
	legendBottom := data.Max.Y - p.Legend.Rectangle(data).Size().Y
	highest := math.Max(c.BaseHeldOut, c.AdapterHeldOut)
	for _, h := range c.HeldOut {
		highest = math.Max(highest, h.Loss)
	}
	for _, l := range c.Losses {
		highest = math.Max(highest, l)
	}
	if y(highest) >= legendBottom {
		t.Errorf("the highest data point (%.3f at %v) reaches the legend (bottom at %v)", highest, y(highest), legendBottom)
	}
	if p.Legend.Rectangle(data).Size().Y <= 0 || len(c.Losses) == 0 {
		t.Fatal("no legend")
	}
}

// TestPlotsArePNGsOfTheStatedSize: 1200×700 pixels.
func TestPlotsArePNGsOfTheStatedSize(t *testing.T) {
	dir := t.TempDir()
	loss := filepath.Join(dir, "loss.png")
	if err := SaveLossCurve(LossCurve{Losses: noisyLosses(50), Steps: 50, BaseHeldOut: 5, AdapterHeldOut: 3}, loss); err != nil {
		t.Fatal(err)
	}
	spectra := filepath.Join(dir, "spectra.png")
	if err := SaveSpectra(diagnosis(4, 7), spectra); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{loss, spectra} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width != WidthPx || cfg.Height != HeightPx {
			t.Errorf("%s: %dx%d (%v), want %dx%d", f, cfg.Width, cfg.Height, err, WidthPx, HeightPx)
		}
	}
}

// diagnosis is a report of layers × the seven Llama module types at rank 8.
func diagnosis(layers, types int) *diagnose.Report {
	names := []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}[:types]
	r := &diagnose.Report{SuggestedRank: 5}
	r.Config.R = 8
	for l := range layers {
		for ti, n := range names {
			sv := make([]float64, 8)
			for i := range sv {
				sv[i] = float64(10+l) * math.Pow(0.3+0.08*float64(ti), float64(i))
			}
			r.Layers = append(r.Layers, diagnose.Layer{Module: fmt.Sprintf("model.layers.%d.self_attn.%s", l, n), SingularValues: sv})
		}
	}
	return r
}

// TestSpectraGroupedByModuleType: 28 layers give 7 groups and a legend of
// 7 types plus the suggested rank, not 28 unlabelled lines.
func TestSpectraGroupedByModuleType(t *testing.T) {
	r := diagnosis(4, 7)
	groups := GroupSpectra(r)
	if len(groups) != 7 || groups[0].Name != "q_proj" || groups[0].Layers != 4 || len(groups[0].Spectra) != 4 {
		t.Fatalf("groups: %+v", groups)
	}
	// Normalised: each spectrum starts at 1; the mean of the group's layers.
	for _, g := range groups {
		if g.Mean[0] != 1 {
			t.Errorf("%s: mean starts at %v", g.Name, g.Mean[0])
		}
	}
	want := (math.Pow(0.3, 2)*4 + 0) / 4 // every layer of q_proj has σ_3/σ_1 = 0.3²
	if math.Abs(groups[0].Mean[2]-want) > 1e-12 {
		t.Errorf("q_proj mean[2] = %v, want %v", groups[0].Mean[2], want)
	}
	p, err := SpectraPlot(r)
	if err != nil {
		t.Fatal(err)
	}
	canvas := draw.New(vgimg.New(vg.Length(WidthPx)*vg.Inch/dpi, vg.Length(HeightPx)*vg.Inch/dpi))
	if h, one := p.Legend.Rectangle(canvas).Size().Y, legendEntryHeight(t); math.Round(float64(h/one)) < 8 || math.Round(float64(h/one)) > 9 {
		t.Errorf("legend is %.1f entries high, want 8 (7 types and the suggested rank)", h/one)
	}
}

func legendEntryHeight(t *testing.T) vg.Length {
	p := plot.New()
	p.Legend.TextStyle.Font.Size = vg.Points(12)
	p.Legend.Add("x")
	canvas := draw.New(vgimg.New(100, 100))
	return p.Legend.Rectangle(canvas).Size().Y
}

func testPage(t *testing.T, dir string) Page {
	loss := filepath.Join(dir, "loss_curve.png")
	if err := SaveLossCurve(LossCurve{Losses: noisyLosses(100), Steps: 100, BaseHeldOut: 5, AdapterHeldOut: 3}, loss); err != nil {
		t.Fatal(err)
	}
	imgs, err := ImageFile("Training loss", loss)
	if err != nil || len(imgs) != 1 {
		t.Fatal(err)
	}
	missing, err := ImageFile("none", filepath.Join(dir, "absent.png"))
	if err != nil || missing != nil {
		t.Fatalf("a missing image: %v %v", missing, err)
	}
	return Page{
		Title: "loraflow evaluation: <quickstart>",
		Facts: []Fact{{"adapter sha256", strings.Repeat("ab", 32)}},
		Metrics: []MetricsRow{
			{Model: "base model", Loss: 5.1234, Perplexity: 167.9, Tokens: 900, Examples: 10},
			{Model: "adapter", Loss: 3.0001, Perplexity: 20.09, Tokens: 900, Examples: 10},
		},
		Images:  imgs,
		Samples: []Sample{{Prompt: "<script>alert(1)</script>", Base: "a", Adapter: "b"}},
	}
}

// TestHTMLReportIsOneSelfContainedPage parses the page as a browser does:
// the images are embedded PNGs of the plots' size, the metrics table has a
// row per model and no accuracy column for text data, and text from the
// run (a prompt) is escaped, never markup.
func TestHTMLReportIsOneSelfContainedPage(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, testPage(t, t.TempDir())); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var imgs, scripts, rows, headers int
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "img":
				imgs++
				for _, a := range n.Attr {
					if a.Key != "src" {
						continue
					}
					data, ok := strings.CutPrefix(a.Val, "data:image/png;base64,")
					if !ok {
						t.Errorf("image not embedded: %.60s", a.Val)
						continue
					}
					raw, err := base64.StdEncoding.DecodeString(data)
					if err != nil {
						t.Fatal(err)
					}
					if cfg, err := png.DecodeConfig(bytes.NewReader(raw)); err != nil || cfg.Width != WidthPx {
						t.Errorf("embedded image: %v %+v", err, cfg)
					}
				}
			case "script", "link":
				scripts++
			case "tr":
				if inTable(n, "metrics") {
					rows++
				}
			case "th":
				if inTable(n, "metrics") && text(n) == "accuracy" {
					headers++
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if imgs != 1 || scripts != 0 || rows != 3 || headers != 0 {
		t.Errorf("images %d (want 1), scripts/links %d (want 0), metric rows %d (want 3), accuracy headers %d (want 0)", imgs, scripts, rows, headers)
	}
	if !strings.Contains(b.String(), "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the sample prompt is not escaped")
	}
	if err := WriteHTML(&bytes.Buffer{}, Page{Images: []Image{{Caption: "x", PNG: []byte("GIF89a")}}}); err == nil {
		t.Error("a non-PNG image was embedded")
	}
}

func inTable(n *html.Node, id string) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Type == html.ElementNode && p.Data == "table" {
			for _, a := range p.Attr {
				if a.Key == "id" {
					return a.Val == id
				}
			}
			return false
		}
	}
	return false
}

func text(n *html.Node) string {
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}

// TestReportRendersInChromium opens the page in headless Chromium (installed
// by scripts/setup.sh from apt) and checks the screenshot shows the plot:
// the smoothed curve's colour is on screen, so the embedded PNG decoded.
func TestReportRendersInChromium(t *testing.T) {
	browser := ""
	for _, name := range []string{"chromium-headless-shell", "chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("no headless Chromium (scripts/setup.sh installs chromium-headless-shell from apt)")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := SaveHTML(testPage(t, dir), page); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	cmd := exec.Command(browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--window-size=1280,1400", "--screenshot="+shot, "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", browser, err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	curve := 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if near(r>>8, uint32(trainColor.R)) && near(g>>8, uint32(trainColor.G)) && near(b>>8, uint32(trainColor.B)) {
				curve++
			}
		}
	}
	if curve < 500 {
		t.Errorf("the screenshot shows %d pixels of the smoothed curve's colour; the plot did not render", curve)
	}
}

func near(a, b uint32) bool { return a+8 >= b && b+8 >= a }
