package report

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Size of the PNG plots, in pixels at the PNG writer's 96 dpi.
const (
	WidthPx  = 1200
	HeightPx = 700
	dpi      = 96
)

var (
	trainColor   = color.RGBA{R: 31, G: 119, B: 180, A: 255}  // matplotlib's C0
	rawColor     = color.NRGBA{R: 31, G: 119, B: 180, A: 80}  // the same, faint (not premultiplied)
	baseColor    = color.RGBA{R: 127, G: 127, B: 127, A: 255} // grey
	adapterColor = color.RGBA{R: 214, G: 39, B: 40, A: 255}   // C3
	heldOutColor = color.RGBA{R: 255, G: 127, B: 14, A: 255}  // C1
)

// LossCurve is what the loss plot shows.
type LossCurve struct {
	// Losses are the training loss per point; point i is at step
	// Step(i) (steps are averaged in buckets when the run had more steps
	// than points).
	Losses []float64
	Steps  int
	// BaseHeldOut and AdapterHeldOut are the held-out losses of the base
	// model and of the trained adapter, drawn as references.
	BaseHeldOut, AdapterHeldOut float64
	// HeldOut is the held-out loss scored during training
	// (evaluation.every_steps), drawn as points joined by a line.
	HeldOut []Point
	// Smoothing is Smooth's weight; 0: DefaultSmoothing.
	Smoothing float64
}

// Point is a loss at a training step.
type Point struct {
	Step int
	Loss float64
}

// Step is the training step of point i: the last step of its bucket.
func (c LossCurve) Step(i int) int {
	n := len(c.Losses)
	if n == 0 || c.Steps <= n {
		return i + 1
	}
	return (i + 1) * c.Steps / n
}

// Plot draws the curve: the raw loss faint, its smoothed curve over it,
// and the held-out losses as dashed references. The legend sits in a band
// kept clear above the data, so no line crosses it.
func (c LossCurve) Plot() (*plot.Plot, error) {
	if len(c.Losses) == 0 {
		return nil, fmt.Errorf("report: loss curve has no points")
	}
	w := c.Smoothing
	if w == 0 {
		w = DefaultSmoothing
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("LoRA training loss (%d steps)", max(c.Steps, len(c.Losses)))
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss (nats/token)"
	p.Add(plotter.NewGrid())
	raw, smooth := make(plotter.XYs, len(c.Losses)), make(plotter.XYs, len(c.Losses))
	sm := Smooth(c.Losses, w)
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, l := range c.Losses {
		x := float64(c.Step(i))
		raw[i], smooth[i] = plotter.XY{X: x, Y: l}, plotter.XY{X: x, Y: sm[i]}
		if !math.IsNaN(l) && !math.IsInf(l, 0) {
			lo, hi = math.Min(lo, l), math.Max(hi, l)
		}
	}
	rawLine, err := plotter.NewLine(raw)
	if err != nil {
		return nil, err
	}
	rawLine.Color, rawLine.Width = rawColor, vg.Points(1)
	smoothLine, err := plotter.NewLine(smooth)
	if err != nil {
		return nil, err
	}
	smoothLine.Color, smoothLine.Width = trainColor, vg.Points(2.5)
	p.Add(rawLine, smoothLine)
	p.Legend.Add("train, raw per step", rawLine)
	p.Legend.Add(fmt.Sprintf("train, smoothed (EMA %.2g)", w), smoothLine)
	xMax := float64(max(c.Steps, len(c.Losses), 2))
	if len(c.HeldOut) > 0 {
		pts := make(plotter.XYs, len(c.HeldOut))
		for i, h := range c.HeldOut {
			pts[i] = plotter.XY{X: float64(h.Step), Y: h.Loss}
			lo, hi = math.Min(lo, h.Loss), math.Max(hi, h.Loss)
		}
		line, scatter, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		line.Color, line.Width = heldOutColor, vg.Points(2)
		scatter.Color, scatter.Radius, scatter.Shape = heldOutColor, vg.Points(3.5), draw.CircleGlyph{}
		p.Add(line, scatter)
		p.Legend.Add("held-out, during training", line, scatter)
	}
	for _, ref := range []struct {
		name   string
		y      float64
		col    color.Color
		dashes []vg.Length
	}{
		{fmt.Sprintf("held-out, base model (%.4f)", c.BaseHeldOut), c.BaseHeldOut, baseColor, []vg.Length{vg.Points(6), vg.Points(4)}},
		{fmt.Sprintf("held-out, adapter (%.4f)", c.AdapterHeldOut), c.AdapterHeldOut, adapterColor, []vg.Length{vg.Points(2), vg.Points(3)}},
	} {
		if ref.y <= 0 || math.IsNaN(ref.y) || math.IsInf(ref.y, 0) {
			continue
		}
		h, err := plotter.NewLine(plotter.XYs{{X: 1, Y: ref.y}, {X: xMax, Y: ref.y}})
		if err != nil {
			return nil, err
		}
		h.Color, h.Width, h.Dashes = ref.col, vg.Points(2), ref.dashes
		p.Add(h)
		p.Legend.Add(ref.name, h)
		lo, hi = math.Min(lo, ref.y), math.Max(hi, ref.y)
	}
	span := hi - lo
	if span <= 0 {
		span = math.Max(math.Abs(hi), 1) * 0.1
	}
	// The top third is the legend's: five entries at 12 pt fit in it.
	p.Y.Min, p.Y.Max = lo-0.05*span, hi+0.6*span
	p.X.Min, p.X.Max = 0, xMax
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(12)
	p.Legend.Padding = vg.Points(2)
	return p, nil
}

// Save draws the plot to path (.png at WidthPx×HeightPx, or .svg/.pdf),
// with fonts sized for that width.
func Save(p *plot.Plot, path string) error {
	p.Title.TextStyle.Font.Size = vg.Points(16)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = vg.Points(14)
		a.Tick.Label.Font.Size = vg.Points(12)
	}
	return p.Save(vg.Length(WidthPx)*vg.Inch/dpi, vg.Length(HeightPx)*vg.Inch/dpi, path)
}

// SaveLossCurve draws c to path.
func SaveLossCurve(c LossCurve, path string) error {
	p, err := c.Plot()
	if err != nil {
		return err
	}
	return Save(p, path)
}
