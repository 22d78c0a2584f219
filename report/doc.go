// Package report draws what a person reads of a run's evaluation: the
// training loss curve (smoothed, the raw steps faint behind it, as
// TensorBoard and W&B draw them), the adapter's ΔW rank spectra grouped by
// module type, and one self-contained HTML page that shows both beside the
// held-out metrics. The pipeline's Evaluate writes them into the eval
// report artifact; nothing here reads the network or the store.
package report
