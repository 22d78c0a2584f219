// Package combine builds one LoRA adapter out of several, with the semantics
// of PEFT's LoraModel.add_weighted_adapter.
//
// Every adapted module of an adapter is a pair of factors, ΔW = s·B·A with A
// of shape [r, in], B of shape [out, r] and s the adapter's scaling
// (lora_alpha/r, or lora_alpha/√r with rsLoRA). The combined adapter has
// lora_alpha = r, so its scaling is 1 and every source adapter's scaling is
// folded into the new factors:
//
//   - linear, ties, dare_linear, dare_ties, magnitude_prune combine the A
//     matrices and the B matrices separately (all ranks must be equal). Each
//     adapter's weight w and scaling s enter as √|w·s| on both sides, the sign
//     of w·s on the A side only, as PEFT does. (This is PEFT's rule, not the
//     exact weighted sum of the products: cross terms B_i·A_j appear.)
//   - cat stacks the factors: A' = [w₁s₁A₁; w₂s₂A₂; …], B' = [B₁ B₂ …], so
//     B'·A' = Σ wᵢsᵢBᵢAᵢ exactly and the new rank is the sum of the ranks.
//   - svd and the *_svd forms build the dense ΔW = Σ wᵢ·(sᵢBᵢAᵢ) (after
//     pruning and sign election for the ties/dare/magnitude forms), take its
//     truncated SVD to svd_rank (default: the largest source rank) and set
//     B' = U·diag(S), A' = Vᵀ, optionally clamping both to the svd_clamp
//     quantile of their entries. Plain svd never forms the dense matrix: it
//     works on the thin QR factors of the stacked factors (see SVDOfProduct).
//
// Pruning follows PEFT's merge_utils: magnitude pruning keeps the
// int(density·n) largest magnitudes, DARE keeps each entry with probability
// density and rescales by 1/density (with a seeded generator here, one stream
// per module, so results are reproducible), TIES elects per entry the sign of
// the sum ("total") or of the count of signs ("frequency") of the unweighted
// pruned tensors, and averages the weighted entries that agree with it.
//
// The package also holds the data-driven initialisations that replace part
// of the base weight by the adapter: PiSSA (A, B from the top-r singular
// triplets of W) and OLoRA (from its QR factorisation), each returning the
// residual W − s·B·A that becomes the training base, and ConvertMutatedInit,
// which turns an adapter trained from such an initialisation into a plain
// rank-2r LoRA for the original base (as PEFT's
// path_initial_model_for_weight_conversion does). merge.InitFromBase applies
// them to a whole checkpoint.
package combine
