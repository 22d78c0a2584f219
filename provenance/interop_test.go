package provenance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// TestSigstoreGoVerifier checks the bundles with sigstore-go's own
// verifier, used directly (key from the PEM file, no transparency log, no
// observer timestamps), against the artifact's files and folder digest.
func TestSigstoreGoVerifier(t *testing.T) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) {
			f := newFixture(t, kt)
			att := f.attestAdapter(t)
			pemBytes, err := os.ReadFile(filepath.Join(f.root, "keys", PublicKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			hash := crypto.SHA256
			if _, ok := pub.(ed25519.PublicKey); ok {
				hash = crypto.Hash(0)
			}
			sv, err := signature.LoadVerifier(pub, hash)
			if err != nil {
				t.Fatal(err)
			}
			tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
				return root.NewExpiringKey(sv, time.Time{}, time.Time{}), nil
			})
			verifier, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
			if err != nil {
				t.Fatal(err)
			}
			check := func(bundlePath string, artifact verify.ArtifactPolicyOption) error {
				b, err := bundle.LoadJSONFromPath(bundlePath)
				if err != nil {
					return err
				}
				_, err = verifier.Verify(b, verify.NewPolicy(artifact, verify.WithKey()))
				return err
			}
			weights := filepath.Join(f.adapter, "adapter_model.safetensors")
			open := func() *os.File {
				r, err := os.Open(weights)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				return r
			}
			for _, b := range att.Bundles {
				if b.Kind == BundleModelSigning {
					continue
				}
				if err := check(b.Path, verify.WithArtifact(open())); err != nil {
					t.Fatalf("%s: %v", b.Kind, err)
				}
			}
			root, _ := hex.DecodeString(att.Root)
			if err := check(att.Bundles[1].Path, verify.WithArtifactDigest("sha256", root)); err != nil {
				t.Fatalf("model-signing: %v", err)
			}
			flipByte(t, weights, 1)
			if err := check(att.Bundles[0].Path, verify.WithArtifact(open())); err == nil {
				t.Fatal("sigstore-go accepted a changed file")
			}
		})
	}
}

// TestCosignVerifiesBundles runs cosign verify-blob-attestation offline on
// every bundle: key-based, no transparency log, an empty trusted root.
func TestCosignVerifiesBundles(t *testing.T) {
	cosign := cosignBinary(t)
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) {
			f := newFixture(t, kt)
			att := f.attestAdapter(t)
			trustedRoot := filepath.Join(f.root, "trusted_root.json")
			writeFile(t, trustedRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`))
			pub := filepath.Join(f.root, "keys", PublicKeyFile)
			run := func(args ...string) (string, error) {
				base := []string{"verify-blob-attestation", "--key", pub, "--new-bundle-format", "--trusted-root", trustedRoot, "--insecure-ignore-tlog"}
				cmd := exec.Command(cosign, append(base, args...)...)
				cmd.Env = append(os.Environ(), "TUF_ROOT="+filepath.Join(f.root, "tuf"), "SIGSTORE_NO_CACHE=true")
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			weights := filepath.Join(f.adapter, "adapter_model.safetensors")
			for _, b := range att.Bundles {
				args := []string{"--bundle", b.Path, "--type", b.PredicateType}
				if b.Kind == BundleProvenance {
					args[3] = "slsaprovenance1"
				}
				if b.Kind == BundleModelSigning {
					args = append(args, "--digest", att.Root, "--digestAlg", "sha256")
				} else {
					args = append(args, weights)
				}
				out, err := run(args...)
				if err != nil || !strings.Contains(out, "Verified OK") {
					t.Fatalf("cosign rejected the %s bundle: %v\n%s", b.Kind, err, out)
				}
			}
			flipByte(t, weights, 1)
			out, err := run("--bundle", att.Bundles[0].Path, "--type", "slsaprovenance1", weights)
			if err == nil {
				t.Fatalf("cosign accepted a changed file:\n%s", out)
			}
			t.Logf("changed file, cosign says: %s", strings.TrimSpace(out))
		})
	}
}

const (
	cosignVersion = "v2.6.5"
	cosignModule  = "github.com/sigstore/cosign/v2/cmd/cosign@" + cosignVersion
)

// cosignBinary returns a cosign of the pinned version: LORAFLOW_COSIGN when
// set, else a cosign on PATH that reports that version, else one built from
// the Go module proxy into the user cache. The first build takes minutes;
// the test is skipped, visibly, only when it cannot be built.
func cosignBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LORAFLOW_COSIGN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("cosign"); err == nil {
		var v struct {
			GitVersion string `json:"gitVersion"`
		}
		if out, err := exec.Command(p, "version", "--json").Output(); err == nil && json.Unmarshal(out, &v) == nil && v.GitVersion == cosignVersion {
			return p
		}
		t.Logf("cosign on PATH (%s) is not %s; using the pinned build", p, cosignVersion)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Skipf("SKIP cosign interop: no user cache dir: %v", err)
	}
	dir := filepath.Join(cache, "loraflow", "tools", "cosign-"+cosignVersion)
	bin := filepath.Join(dir, "cosign")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if testing.Short() {
		t.Skipf("SKIP cosign interop: %s not built and -short given (go install %s)", bin, cosignModule)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("SKIP cosign interop: no go command to build %s", cosignModule)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Skipf("SKIP cosign interop: %v", err)
	}
	// One build at a time across test processes.
	lock := filepath.Join(dir, ".lock")
	deadline := time.Now().Add(15 * time.Minute)
	for {
		l, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			l.Close()
			defer os.Remove(lock)
			break
		}
		if _, err := os.Stat(bin); err == nil {
			return bin
		}
		if time.Now().After(deadline) {
			t.Skipf("SKIP cosign interop: waited too long for another build of cosign (%s)", lock)
		}
		time.Sleep(2 * time.Second)
	}
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("building cosign (%s) into %s; this takes minutes the first time", cosignModule, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", cosignModule)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tail := out.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		t.Skipf("SKIP cosign interop: cannot build %s: %v\n%s", cosignModule, err, tail)
	}
	if _, err := os.Stat(bin); errors.Is(err, os.ErrNotExist) {
		t.Skipf("SKIP cosign interop: go install left no binary at %s", bin)
	}
	return bin
}
