package provenance

import (
	"context"
	"os"
	"strings"
	"testing"
)

// FuzzVerifyProvenanceBundle feeds arbitrary bytes to Verify as an
// adapter's provenance bundle. It must never panic, and whatever it accepts
// must carry the one statement the trusted key signed. The seeds (a real
// bundle, cut and edited forms of it) run as a normal test in CI; fuzz with
// go test ./provenance -run '^$' -fuzz FuzzVerifyProvenanceBundle -fuzztime 30s
func FuzzVerifyProvenanceBundle(f *testing.F) {
	ctx := context.Background()
	fx := newFixture(f, KeyEd25519)
	att, err := Attest(ctx, fx.signer, fx.adapterArtifact(fx.adapter))
	if err != nil {
		f.Fatal(err)
	}
	path := BundlePath(fx.adapter, BundleProvenance)
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(strings.Replace(string(good), `"payloadType":"application/vnd.in-toto+json"`, `"payloadType":"text/plain"`, 1)))
	f.Add([]byte(strings.Replace(string(good), `"sig":"`, `"sig":"AAAA`, 1)))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		v, err := Verify(ctx, fx.adapter, fx.keys)
		if v == nil {
			t.Fatal("nil verdict")
		}
		if err == nil && v.ProvenanceSHA256 != att.ProvenanceSHA256 {
			t.Fatalf("accepted a statement (sha256 %s) the key never signed (it signed %s)", v.ProvenanceSHA256, att.ProvenanceSHA256)
		}
	})
}
