// Package provenance signs and verifies what a loraflow pipeline produces.
//
// Every artifact (a LoRA adapter folder, a merged model folder, an
// evaluation report) gets in-toto Statement v1 attestations, each wrapped
// in a DSSE envelope inside a Sigstore bundle (v0.3 JSON) signed with an
// offline ECDSA P-256 or Ed25519 key:
//
//   - SLSA Provenance v1 (https://slsa.dev/provenance/v1): what went in
//     (base model, dataset snapshot, parent artifacts with their attestation
//     digests, the worker binary), the spec as run, the Temporal workflow and
//     run ID, start and finish times. It is the root of the set: its
//     byproducts name the digests of the other statements.
//   - OpenSSF model signing (https://model_signing/signature/v1.0) for model
//     and adapter folders: per-file sha256 resources and one folder digest.
//   - Evaluation results and carbon accounting, as their own statements
//     (EvalPredicateType, CarbonPredicateType).
//
// Bundles are written beside the artifact, never inside it, so that the
// folder's digest does not change: <artifact>.provenance.sigstore.json,
// <artifact>.model-signing.sigstore.json, <artifact>.eval.sigstore.json and
// <artifact>.carbon.sigstore.json (see BundlePath).
//
// The three entry points are [Attest], [Verify] and [HashTree]. Verify
// re-hashes every file, checks every signature against a set of
// [TrustedKeys] (several keys, for rotation), follows the chain to parent
// artifacts and dependencies, and reports the first failure as a
// *[VerificationError] whose Reason is a stable name, so callers can turn it
// into a non-retryable error:
//
//	signer, err := provenance.LoadSigner("env:LORAFLOW_SIGNING_KEY")
//	att, err := provenance.Attest(ctx, signer, provenance.Artifact{
//		Kind: provenance.KindAdapter, Dir: adapterDir,
//		Dependencies: []provenance.Dependency{
//			{Role: provenance.RoleBaseModel, Name: "base", URI: baseURI, SHA256: baseDigest},
//			{Role: provenance.RoleDataset, Name: "snapshot", URI: dataURI, SHA256: dataDigest},
//		},
//		ExternalParameters: spec, InvocationID: workflowID + "/" + runID,
//		StartedOn: start, FinishedOn: time.Now(),
//	})
//
//	keys, err := provenance.LoadTrustedKeys("keys/2026.pub", "keys/2027.pub")
//	verdict, err := provenance.Verify(ctx, adapterDir, keys)
//	var ve *provenance.VerificationError
//	if errors.As(err, &ve) { /* refuse: ve.Reason, ve.Path */ }
//
// The formats and predicate types are documented in docs/provenance.md.
package provenance
