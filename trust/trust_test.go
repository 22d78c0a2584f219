package trust

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
)

// setup is a worker's folders: the artifact root, one input root holding a
// base model and a dataset, a signing key, and a folder outside every root.
type setup struct {
	artifacts, inputs, outside, key, pub string
	spec                                 spec.Spec
}

func newSetup(t *testing.T) setup {
	t.Helper()
	dir := t.TempDir()
	s := setup{artifacts: filepath.Join(dir, "artifacts"), inputs: filepath.Join(dir, "inputs"), outside: filepath.Join(dir, "outside")}
	for _, p := range []string{filepath.Join(s.inputs, "base"), s.outside, s.artifacts} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(s.inputs, "base", "config.json"), filepath.Join(s.inputs, "data.jsonl"), filepath.Join(s.outside, "secret")} {
		if err := os.WriteFile(f, []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if s.key, s.pub, err = provenance.GenerateKey(filepath.Join(dir, "keys"), provenance.KeyEd25519); err != nil {
		t.Fatal(err)
	}
	s.spec = spec.Spec{Name: "m", BaseModel: filepath.Join(s.inputs, "base"), Dataset: spec.Dataset{Files: []string{filepath.Join(s.inputs, "data.jsonl")}}}
	return s
}

func (s setup) policy(t *testing.T, regs ...Registry) *Policy {
	t.Helper()
	p, err := New(Config{ArtifactRoot: s.artifacts, InputRoots: []string{s.inputs}, Registries: regs, SigningKey: s.key})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wantField(t *testing.T, err error, field, msg string) {
	t.Helper()
	var se *SpecError
	if !errors.As(err, &se) {
		t.Fatalf("want a *SpecError for %s, got %v", field, err)
	}
	if se.Field != field || !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q: want field %s and %q", err, field, msg)
	}
}

func TestSpecWithinRootsPasses(t *testing.T) {
	s := newSetup(t)
	if err := s.policy(t).CheckSpec(s.spec); err != nil {
		t.Fatal(err)
	}
}

// A spec path outside the roots: directly, through a symlink, or through a
// symlink inside an allowed folder.
func TestSpecPathOutsideRootsIsRefused(t *testing.T) {
	s := newSetup(t)
	p := s.policy(t)
	sp := s.spec
	sp.BaseModel = s.outside
	wantField(t, p.CheckSpec(sp), "base_model", "outside the worker's input roots")

	link := filepath.Join(s.inputs, "innocent.jsonl")
	if err := os.Symlink(filepath.Join(s.outside, "secret"), link); err != nil {
		t.Fatal(err)
	}
	sp = s.spec
	sp.Dataset.Files = append(sp.Dataset.Files, link)
	wantField(t, p.CheckSpec(sp), "dataset.files[1]", "resolves to")

	sp = s.spec
	sp.Dataset.Files = []string{filepath.Join(s.inputs, "..", "outside", "secret")}
	wantField(t, p.CheckSpec(sp), "dataset.files[0]", "outside")

	if err := os.Symlink(filepath.Join(s.outside, "secret"), filepath.Join(s.inputs, "base", "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	wantField(t, p.CheckSpec(s.spec), "base_model", "outside")
}

// The token sent to a foreign host: a spec's registry.uri never receives
// the worker's MLflow credentials.
func TestSpecRegistryURICannotReceiveCredentials(t *testing.T) {
	var hits atomic.Int32
	var sawToken atomic.Bool
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Authorization") != "" {
			sawToken.Store(true)
		}
		http.Error(w, "{}", http.StatusNotFound)
	}))
	defer foreign.Close()
	t.Setenv(registry.EnvMLflowToken, "worker-secret-token")
	s := newSetup(t)
	p := s.policy(t, Registry{Name: "prod", URI: "http://mlflow.internal:5000"})
	sp := s.spec
	sp.Registry.URI = foreign.URL
	_, err := p.OpenRegistry(context.Background(), sp)
	wantField(t, err, "registry.uri", "not a registry this worker declares")
	if err := p.CheckSpec(sp); err == nil {
		t.Fatal("CheckSpec accepts a foreign registry")
	}
	if hits.Load() != 0 || sawToken.Load() {
		t.Fatalf("the foreign host was contacted (%d requests, token %v)", hits.Load(), sawToken.Load())
	}
	// Naming the declared registry works, by name or by its exact URI.
	sp.Registry.URI = ""
	sp.Registry.Name = "prod"
	if uri, err := p.RegistryURI(sp); err != nil || uri != "http://mlflow.internal:5000" {
		t.Fatalf("declared registry by name: %q %v", uri, err)
	}
	sp.Registry.Name = "evil"
	wantField(t, p.CheckSpec(sp), "registry.name", "not a registry this worker declares")
}

func TestFileRegistryOnlyInsideRoots(t *testing.T) {
	s := newSetup(t)
	p := s.policy(t)
	sp := s.spec
	sp.Registry.URI = "file://" + filepath.Join(s.outside, "reg", "new")
	wantField(t, p.CheckSpec(sp), "registry.uri", "outside the worker's roots")
	if _, err := os.Stat(filepath.Join(s.outside, "reg")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a folder was created outside the roots: %v", err)
	}
	sp.Registry.URI = "file://" + filepath.Join(s.artifacts, "registry")
	if err := p.CheckSpec(sp); err != nil {
		t.Fatal(err)
	}
}

func TestUserinfoInRegistryURIIsRefused(t *testing.T) {
	s := newSetup(t)
	p := s.policy(t)
	sp := s.spec
	sp.Registry.URI = "https://alice:hunter2@mlflow.example.com"
	err := p.CheckSpec(sp)
	wantField(t, err, "registry.uri", "user:password@")
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error repeats the password: %v", err)
	}
	if _, err := New(Config{ArtifactRoot: s.artifacts, Registries: []Registry{{Name: "prod", URI: "https://a:b@mlflow"}}}); err == nil || !strings.Contains(err.Error(), `registry "prod"`) {
		t.Fatalf("operator config with userinfo accepted: %v", err)
	}
	if err := sp.Validate(); err == nil || !strings.Contains(err.Error(), "registry.uri") {
		t.Fatalf("spec.Validate accepts userinfo (it would reach workflow history): %v", err)
	}
}

// A spec-supplied trusted key, or a spec choosing the signing key file or
// an env: variable, is refused.
func TestSpecCannotChooseKeys(t *testing.T) {
	s := newSetup(t)
	p := s.policy(t)
	attacker, _, err := provenance.GenerateKey(filepath.Join(s.outside, "k"), provenance.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	sp := s.spec
	sp.Signing.TrustedKeys = []string{filepath.Join(s.outside, "k", provenance.PublicKeyFile)}
	wantField(t, p.CheckSpec(sp), "signing.trusted_keys[0]", "cannot add trusted keys")
	for _, k := range []string{attacker, "env:LORAFLOW_SIGNING_KEY", s.key} {
		sp := s.spec
		sp.Signing.Key = k
		wantField(t, p.CheckSpec(sp), "signing.key", "cannot choose a key file")
	}
	// Listing a key the worker already trusts adds nothing and is allowed;
	// naming a declared key works.
	pp, err := New(Config{ArtifactRoot: s.artifacts, InputRoots: []string{s.inputs}, SigningKey: s.key,
		SigningKeys: map[string]string{"team-b": attacker}, TrustedKeys: []string{s.pub}})
	if err != nil {
		t.Fatal(err)
	}
	sp = s.spec
	sp.Signing.Key, sp.Signing.TrustedKeys = "team-b", []string{s.pub}
	if err := pp.CheckSpec(sp); err != nil {
		t.Fatal(err)
	}
	sg, err := pp.Signer(sp)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := pp.Verifier()
	if v.TrustedKeys().Len() != 2 || sg.KeyID() == "" {
		t.Fatalf("trusted %d keys", v.TrustedKeys().Len())
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	s := newSetup(t)
	cases := map[string]Config{
		"no artifact root":   {},
		"missing input root": {ArtifactRoot: s.artifacts, InputRoots: []string{filepath.Join(s.outside, "nope")}},
		"duplicate registry": {ArtifactRoot: s.artifacts, Registries: []Registry{{Name: "a", URI: "file:///x"}, {Name: "a", URI: "file:///y"}}},
		"bad signing key":    {ArtifactRoot: s.artifacts, SigningKey: filepath.Join(s.outside, "secret")},
		"reserved key name":  {ArtifactRoot: s.artifacts, SigningKeys: map[string]string{DefaultName: s.key}},
	}
	for name, c := range cases {
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
