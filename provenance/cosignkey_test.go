package provenance

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLoadsCosignEncryptedKey: a key from `cosign generate-key-pair`
// (testdata/cosign-key, password loraflow-test) loads with COSIGN_PASSWORD
// set, as cosign loads it, and is refused with a message naming the
// variable when it is not set or wrong.
func TestLoadsCosignEncryptedKey(t *testing.T) {
	key := filepath.Join("testdata", "cosign-key", "cosign.key")
	t.Setenv(CosignPasswordEnv, "") // restored after the test
	os.Unsetenv(CosignPasswordEnv)
	if _, err := LoadSigner(key); err == nil || !strings.Contains(err.Error(), "set COSIGN_PASSWORD") {
		t.Fatalf("no password: %v", err)
	}
	t.Setenv(CosignPasswordEnv, "wrong")
	if _, err := LoadSigner(key); err == nil || !strings.Contains(err.Error(), "decrypting the cosign key") {
		t.Fatalf("wrong password: %v", err)
	}
	t.Setenv(CosignPasswordEnv, "loraflow-test")
	s, err := LoadSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("testdata", "cosign-key", "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pub, s.PublicKey()) {
		t.Error("the decrypted key is not cosign.pub's")
	}
}
