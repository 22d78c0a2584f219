package diagnose

import (
	"fmt"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// maxLegend is the largest number of modules given a legend entry.
const maxLegend = 12

// Plot draws the singular value spectra (log scale, one line per module,
// index 1..r) with a dashed line at the suggested rank, and saves it to path;
// the extension picks the format (.png, .svg, .pdf).
func (r *Report) Plot(path string) error {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".png", ".svg", ".pdf":
	default:
		return fmt.Errorf("diagnose: plot %s: unsupported format %q (use .png, .svg or .pdf)", path, ext)
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("ΔW singular values (r=%d, suggested rank %d)", r.Config.R, r.SuggestedRank)
	p.X.Label.Text = "index"
	p.Y.Label.Text = "singular value"
	lo, hi := 0.0, 0.0
	for i, l := range r.Layers {
		var pts plotter.XYs
		for j, s := range l.SingularValues {
			if s > 0 {
				pts = append(pts, plotter.XY{X: float64(j + 1), Y: s})
				if lo == 0 || s < lo {
					lo = s
				}
				hi = max(hi, s)
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("diagnose: plot module %q: %w", l.Module, err)
		}
		line.Color = plotutil.Color(i)
		p.Add(line)
		if len(r.Layers) <= maxLegend {
			p.Legend.Add(l.Module, line)
		}
	}
	longest := 0
	for _, l := range r.Layers {
		longest = max(longest, len(l.SingularValues))
	}
	p.X.Min, p.X.Max = 0.5, float64(max(longest, r.SuggestedRank))+0.5
	if hi > 0 {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		if hi < 10*lo {
			// Less than a decade: powers of ten would leave the axis unlabelled.
			p.Y.Tick.Marker = plot.DefaultTicks{}
		}
	} else {
		// Nothing positive to draw on a log scale (e.g. B = 0 at initialisation).
		p.Title.Text += ": every ΔW is zero"
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, float64(max(1, r.Config.R)), 0, 1
	}
	if hi > 0 && r.SuggestedRank > 0 {
		mark, err := plotter.NewLine(plotter.XYs{{X: float64(r.SuggestedRank), Y: lo}, {X: float64(r.SuggestedRank), Y: hi}})
		if err != nil {
			return err
		}
		mark.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(mark)
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(7)
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("diagnose: save plot %s: %w", path, err)
	}
	return nil
}
