package provenance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Type URIs used in the statements. The loraflow ones are documented in
// docs/provenance.md.
const (
	PayloadType   = "application/vnd.in-toto+json"
	StatementType = "https://in-toto.io/Statement/v1"

	SLSAPredicateType         = "https://slsa.dev/provenance/v1"
	ModelSigningPredicateType = "https://model_signing/signature/v1.0"
	EvalPredicateType         = "https://github.com/loraflow/loraflow/attestation/eval/v1"
	CarbonPredicateType       = "https://github.com/loraflow/loraflow/attestation/carbon/v1"

	// BuildType is the SLSA buildType of every loraflow provenance statement.
	BuildType = "https://github.com/loraflow/loraflow/buildtypes/lora-pipeline/v1"
	// DefaultBuilderID is the SLSA builder.id when Artifact.BuilderID is empty.
	DefaultBuilderID = "https://github.com/loraflow/loraflow/worker"
)

// statement is an in-toto Statement v1. It is built with encoding/json
// (deterministic, and exact for 64-bit integers such as seeds) and checked
// against the in-toto protobuf schema before signing and after verifying.
type statement struct {
	Type          string               `json:"_type"`
	Subject       []resourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     json.RawMessage      `json:"predicate"`
}

type resourceDescriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	MediaType   string            `json:"mediaType,omitempty"`
	Annotations map[string]any    `json:"annotations,omitempty"`
}

// slsaProvenance is the SLSA Provenance v1 predicate.
type slsaProvenance struct {
	BuildDefinition struct {
		BuildType            string               `json:"buildType"`
		ExternalParameters   json.RawMessage      `json:"externalParameters"`
		InternalParameters   internalParameters   `json:"internalParameters"`
		ResolvedDependencies []resourceDescriptor `json:"resolvedDependencies,omitempty"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID      string            `json:"id"`
			Version map[string]string `json:"version,omitempty"`
		} `json:"builder"`
		Metadata struct {
			InvocationID string     `json:"invocationId"`
			StartedOn    *time.Time `json:"startedOn,omitempty"`
			FinishedOn   *time.Time `json:"finishedOn,omitempty"`
		} `json:"metadata"`
		Byproducts []resourceDescriptor `json:"byproducts,omitempty"`
	} `json:"runDetails"`
}

// internalParameters is what loraflow itself decides about an artifact.
type internalParameters struct {
	Artifact       artifactInfo `json:"artifact"`
	WorkerIdentity string       `json:"workerIdentity,omitempty"`
}

// artifactInfo names the attested artifact inside every loraflow statement.
type artifactInfo struct {
	Kind   Kind   `json:"kind"`
	Name   string `json:"name"`
	Layout string `json:"layout"` // layoutFolder or layoutFiles
	SHA256 string `json:"sha256"` // folder digest of the files
}

const (
	layoutFolder = "folder"
	layoutFiles  = "files"
)

// modelSigningPredicate is OpenSSF model_signing's v1.0 predicate.
type modelSigningPredicate struct {
	Serialization struct {
		Method        string   `json:"method"`
		HashType      string   `json:"hash_type"`
		AllowSymlinks bool     `json:"allow_symlinks"`
		IgnorePaths   []string `json:"ignore_paths"`
	} `json:"serialization"`
	Resources []modelSigningResource `json:"resources"`
}

type modelSigningResource struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm"`
	Digest    string `json:"digest"`
}

// resultPredicate is the predicate of EvalPredicateType (Results) and
// CarbonPredicateType (Report) statements.
type resultPredicate struct {
	Artifact     artifactInfo    `json:"artifact"`
	InvocationID string          `json:"invocationId"`
	Results      json.RawMessage `json:"results,omitempty"`
	Report       json.RawMessage `json:"report,omitempty"`
}

func fileSubjects(files []FileDigest) []resourceDescriptor {
	s := make([]resourceDescriptor, len(files))
	for i, f := range files {
		s[i] = resourceDescriptor{Name: f.Name, Digest: map[string]string{"sha256": f.SHA256}}
	}
	return s
}

// marshalStatement encodes st and checks it against the in-toto schema.
func marshalStatement(st statement) ([]byte, error) {
	st.Type = StatementType
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("provenance: encode %s statement: %w", st.PredicateType, err)
	}
	if _, err := validateStatement(b); err != nil {
		return nil, err
	}
	return b, nil
}

// validateStatement parses b with the in-toto protobuf types, runs their
// validation (and SLSA's for provenance predicates), and returns the
// statement decoded with exact numbers.
func validateStatement(b []byte) (*statement, error) {
	var pb intoto.Statement
	if err := protojson.Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("provenance: statement is not in-toto v1: %w", err)
	}
	if err := pb.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: invalid in-toto statement: %w", err)
	}
	if pb.GetPredicateType() == SLSAPredicateType {
		pj, err := protojson.Marshal(pb.GetPredicate())
		if err != nil {
			return nil, fmt.Errorf("provenance: SLSA predicate: %w", err)
		}
		var prov slsa.Provenance
		if err := protojson.Unmarshal(pj, &prov); err != nil {
			return nil, fmt.Errorf("provenance: SLSA predicate: %w", err)
		}
		if err := prov.Validate(); err != nil {
			return nil, fmt.Errorf("provenance: invalid SLSA predicate: %w", err)
		}
	}
	var st statement
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("provenance: statement: %w", err)
	}
	return &st, nil
}

// rawObject encodes v as JSON and requires a JSON object.
func rawObject(what string, v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("provenance: encode %s: %w", what, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("provenance: %s must encode as a JSON object, got %.40s", what, b)
	}
	if string(b) == "{}" {
		return nil, fmt.Errorf("provenance: %s is empty", what)
	}
	return b, nil
}
