// Package diagnose describes what a LoRA adapter changes: for each adapted
// module the singular values of ΔW = s·B·A, its effective rank (the number of
// singular values holding 90% and 99% of the energy Σσ²), its Frobenius
// norm and, given the base checkpoint, the ratio ‖ΔW‖_F/‖W0‖_F. It suggests
// the smallest rank that keeps 99% of the energy of every module, counts
// parameters (trainable and, with the base, total), and draws the spectra
// with gonum/plot.
//
// The singular values come from the small r×r problem (thin QR of B and of
// Aᵀ, see combine.SVDOfProduct), never from an SVD of the dense out×in ΔW.
package diagnose
