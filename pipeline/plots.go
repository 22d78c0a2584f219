package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/loraflow/loraflow/lora/diagnose"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// Files of the eval report artifact besides the report itself.
const (
	LossCurveFile   = "loss_curve.png"
	RankReportFile  = "rank_report.json"
	RankSpectraFile = "rank_spectra.png"
)

// plotLossCurve draws the training loss per step, with the base and
// adapter held-out losses as horizontal references.
func plotLossCurve(path string, losses []float64, steps int, baseEval, adapterEval float64) error {
	p := plot.New()
	p.Title.Text = "LoRA training loss"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss (nats/token)"
	pts := make(plotter.XYs, len(losses))
	for i, l := range losses {
		pts[i] = plotter.XY{X: float64(CurveStep(i, len(losses), steps)), Y: l}
	}
	line, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	p.Add(line)
	p.Legend.Add("train (per step)", line)
	for _, ref := range []struct {
		name string
		y    float64
	}{{"held-out, base model", baseEval}, {"held-out, adapter", adapterEval}} {
		h, err := plotter.NewLine(plotter.XYs{{X: 1, Y: ref.y}, {X: float64(max(steps, len(losses), 2)), Y: ref.y}})
		if err != nil {
			return err
		}
		h.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		if ref.name == "held-out, adapter" {
			h.Dashes = []vg.Length{vg.Points(1), vg.Points(2)}
		}
		p.Add(h)
		p.Legend.Add(ref.name, h)
	}
	p.Legend.Top = true
	return p.Save(7*vg.Inch, 4*vg.Inch, path)
}

// rankDiagnostics writes the adapter's ΔW spectra (JSON and plot) into dir.
func rankDiagnostics(ctx context.Context, dir, baseDir string, adapter *peft.Adapter) (*diagnose.Report, error) {
	ck, err := safetensors.OpenDir(baseDir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	rep, err := diagnose.Analyze(ctx, adapter, ck)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, RankReportFile))
	if err != nil {
		return nil, err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := rep.Plot(filepath.Join(dir, RankSpectraFile)); err != nil {
		return nil, fmt.Errorf("rank spectra plot: %w", err)
	}
	return rep, nil
}
