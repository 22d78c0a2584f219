package registry

// Tag keys the pipeline puts on every version (through PublishRequest.Tags),
// so that a version can be traced and compared from the registry alone.
// Use them rather than ad-hoc names, so that local and MLflow registries,
// the CLI and the gate agree. Energy and emissions come as the carbon.*
// tags of carbon.Summary.Tags; eval metrics go in PublishRequest.Metrics
// (stored as TagMetricPrefix tags).
const (
	TagAdapterDigest     = "loraflow.adapter_digest"     // sha256 of the adapter folder
	TagMergedDigest      = "loraflow.merged_digest"      // sha256 of the merged model, when made
	TagAttestationDigest = "loraflow.attestation_digest" // sha256 of the provenance bundle(s), comma-separated
	TagBaseModel         = "loraflow.base_model"         // base model name or path
	TagBaseModelDigest   = "loraflow.base_model_digest"
	TagDatasetDigest     = "loraflow.dataset_digest" // dataset snapshot digest
	// TagDatasetSHA256 is the input tag of an MLflow dataset input holding
	// the full "sha256:<hex>" digest; the dataset's own digest field holds
	// MLflow's 8-character short form (see mlflowDatasetDigest).
	TagDatasetSHA256 = "loraflow.dataset_sha256"
	TagSpecDigest    = "loraflow.spec_digest"
	TagWorkflowID    = "loraflow.workflow_id"
	TagRunID         = "loraflow.run_id"
	TagGateDecision  = "loraflow.gate" // "champion" or "challenger" and why
)
