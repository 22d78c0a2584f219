package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/loraflow/loraflow/lora/diagnose"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
	"github.com/loraflow/loraflow/report"
)

// Files of the eval report artifact besides the report itself.
const (
	LossCurveFile   = "loss_curve.png"
	RankReportFile  = "rank_report.json"
	RankSpectraFile = "rank_spectra.png"
	// ReportHTMLFile is the page that shows the report and its plots in
	// a browser: one self-contained file.
	ReportHTMLFile = "report.html"
)

// plotLossCurve draws the training loss per step (smoothed, the raw steps
// faint), with the base and adapter held-out losses as references.
func plotLossCurve(path string, losses []float64, steps int, heldOut []CurvePoint, baseEval, adapterEval float64) error {
	c := report.LossCurve{Losses: losses, Steps: steps, BaseHeldOut: baseEval, AdapterHeldOut: adapterEval}
	for _, p := range heldOut {
		c.HeldOut = append(c.HeldOut, report.Point{Step: p.Step, Loss: p.Loss})
	}
	return report.SaveLossCurve(c, path)
}

// writeHTMLReport writes the report page, with the plots in dir embedded.
func writeHTMLReport(dir, name string, rep evalReport, classification bool) error {
	page := report.Page{
		Title: "loraflow evaluation: " + name,
		Facts: []report.Fact{
			{Label: "adapter sha256", Value: rep.Adapter}, {Label: "base model sha256", Value: rep.BaseModel},
			{Label: "dataset snapshot sha256", Value: rep.Snapshot}, {Label: "held-out split", Value: rep.Split},
		},
		Classification: classification,
	}
	if rep.SuggestedRank > 0 {
		page.Facts = append(page.Facts, report.Fact{Label: "suggested rank", Value: fmt.Sprint(rep.SuggestedRank)})
	}
	row := func(model string, m reportMetrics) report.MetricsRow {
		r := report.MetricsRow{Model: model, Loss: m.Loss, Perplexity: m.Perplexity, Tokens: m.Tokens, Examples: m.Examples}
		if m.Accuracy != nil {
			r.Accuracy = *m.Accuracy
		}
		return r
	}
	page.Metrics = append(page.Metrics, row("base model", rep.Base), row("adapter", rep.Adapted))
	if rep.Champion != nil {
		page.Metrics = append(page.Metrics, row("champion v"+rep.ChampionVersion, *rep.Champion))
	}
	for _, im := range []struct{ caption, file string }{
		{"Training loss: raw per step (faint) and smoothed, with the held-out losses", LossCurveFile},
		{"ΔW singular values by module type, with the suggested rank", RankSpectraFile},
	} {
		imgs, err := report.ImageFile(im.caption, filepath.Join(dir, im.file))
		if err != nil {
			return err
		}
		page.Images = append(page.Images, imgs...)
	}
	for _, s := range rep.Samples {
		page.Samples = append(page.Samples, report.Sample{Prompt: s.Prompt, Base: s.Base, Adapter: s.Adapter})
	}
	return report.SaveHTML(page, filepath.Join(dir, ReportHTMLFile))
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
	if err := report.SaveSpectra(rep, filepath.Join(dir, RankSpectraFile)); err != nil {
		return nil, fmt.Errorf("rank spectra plot: %w", err)
	}
	return rep, nil
}
