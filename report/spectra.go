package report

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/loraflow/loraflow/lora/diagnose"
)

// palette is matplotlib's tab10, one colour per module type.
var palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255},
	{140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}, {188, 189, 34, 255}, {23, 190, 207, 255},
}

// ModuleGroup is the spectra of every layer of one module type (q_proj,
// v_proj, ...), each normalised by its largest singular value so layers of
// different scale share an axis.
type ModuleGroup struct {
	Name    string
	Layers  int
	Spectra [][]float64 // σ_i/σ_1 per layer; all-zero layers left out
	Mean    []float64   // the mean of Spectra at each index
}

// GroupSpectra groups a diagnosis's layers by module type (the last part of
// the module name, what target_modules names), in first-seen order.
func GroupSpectra(r *diagnose.Report) []ModuleGroup {
	var groups []ModuleGroup
	index := map[string]int{}
	for _, l := range r.Layers {
		name := l.Module[strings.LastIndexByte(l.Module, '.')+1:]
		i, ok := index[name]
		if !ok {
			i = len(groups)
			index[name] = i
			groups = append(groups, ModuleGroup{Name: name})
		}
		g := &groups[i]
		g.Layers++
		if len(l.SingularValues) == 0 || l.SingularValues[0] <= 0 {
			continue
		}
		s := make([]float64, len(l.SingularValues))
		for j, v := range l.SingularValues {
			s[j] = v / l.SingularValues[0]
		}
		g.Spectra = append(g.Spectra, s)
	}
	for i := range groups {
		g := &groups[i]
		longest := 0
		for _, s := range g.Spectra {
			longest = max(longest, len(s))
		}
		g.Mean = make([]float64, longest)
		for j := range g.Mean {
			n := 0
			for _, s := range g.Spectra {
				if j < len(s) {
					g.Mean[j] += s[j]
					n++
				}
			}
			g.Mean[j] /= float64(n)
		}
	}
	return groups
}

// floor keeps zero singular values drawable on the log axis.
const floor = 1e-6

// SpectraPlot draws the ΔW spectra by module type: each layer's normalised
// spectrum faint, the type's mean bold in the same colour, one legend entry
// per type (not per layer), and the suggested rank as a dashed line.
func SpectraPlot(r *diagnose.Report) (*plot.Plot, error) {
	groups := GroupSpectra(r)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("ΔW singular values by module type (r=%d, suggested rank %d)", r.Config.R, r.SuggestedRank)
	p.X.Label.Text = "singular value index"
	p.Y.Label.Text = "σ_i / σ_1 (each layer)"
	p.Add(plotter.NewGrid())
	longest, drawn := 0, 0
	lo := 1.0
	for gi, g := range groups {
		c := palette[gi%len(palette)]
		faint := color.NRGBA{R: c.R, G: c.G, B: c.B, A: 70} // not premultiplied
		for _, s := range g.Spectra {
			line, err := plotter.NewLine(spectrumXYs(s))
			if err != nil {
				return nil, err
			}
			line.Color, line.Width = faint, vg.Points(1)
			p.Add(line)
		}
		if len(g.Mean) == 0 {
			continue
		}
		mean, err := plotter.NewLine(spectrumXYs(g.Mean))
		if err != nil {
			return nil, err
		}
		mean.Color, mean.Width = c, vg.Points(3)
		p.Add(mean)
		p.Legend.Add(fmt.Sprintf("%s (%d layers, mean bold)", g.Name, g.Layers), mean)
		longest = max(longest, len(g.Mean))
		drawn++
		for _, s := range g.Spectra {
			for _, v := range s {
				lo = math.Min(lo, math.Max(v, floor))
			}
		}
	}
	if drawn == 0 {
		p.Title.Text += ": every ΔW is zero"
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, float64(max(1, r.Config.R)), 0, 1
		return p, nil
	}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	// Above 1 is the legend's band, as tall as its entries: each takes
	// about 3% of the data area's height at 1200x700.
	p.Y.Min = lo / 2
	frac := math.Min(0.6, 0.035*float64(drawn+2))
	decades := math.Log10(1 / p.Y.Min)
	p.Y.Max = math.Pow(10, decades*frac/(1-frac)) * 1.1
	p.X.Min, p.X.Max = 0.5, float64(max(longest, r.SuggestedRank))+0.5
	if r.SuggestedRank > 0 {
		mark, err := plotter.NewLine(plotter.XYs{{X: float64(r.SuggestedRank), Y: p.Y.Min}, {X: float64(r.SuggestedRank), Y: 1}})
		if err != nil {
			return nil, err
		}
		mark.Dashes, mark.Width = []vg.Length{vg.Points(5), vg.Points(3)}, vg.Points(1.5)
		p.Add(mark)
		p.Legend.Add(fmt.Sprintf("suggested rank %d (99%% of every layer's energy)", r.SuggestedRank), mark)
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(12)
	return p, nil
}

func spectrumXYs(s []float64) plotter.XYs {
	pts := make(plotter.XYs, len(s))
	for i, v := range s {
		pts[i] = plotter.XY{X: float64(i + 1), Y: math.Max(v, floor)}
	}
	return pts
}

// SaveSpectra draws the spectra of r to path.
func SaveSpectra(r *diagnose.Report, path string) error {
	p, err := SpectraPlot(r)
	if err != nil {
		return err
	}
	return Save(p, path)
}
