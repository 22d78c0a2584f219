package provenance

import (
	"os"
	"path/filepath"
	"testing"
)

// The P-256 key below was made with `openssl ecparam -name prime256v1
// -genkey | openssl pkcs8 -topk8 -nocrypt`, its public half with `openssl ec
// -pubout`, and the expected hint with `sha256sum` of that public PEM file:
// model-transparency's src/model_signing/_signing/sign_ec_key.py computes
// the hint as hashlib.sha256(<SubjectPublicKeyInfo PEM>).digest().hex() when
// signing (_get_verification_material) and refuses a bundle whose hint
// differs when verifying (_verify_bundle, "Key mismatch").
const (
	hintTestPrivPEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYeH+YjKRq6kSY+4W
XCK1YIJYPrNU3TJ3gaxtS84fAGChRANCAATPzGDhzYkduTKGuB4sye4Df1I687/P
rmPSw6W/ohok9tAfp3zUAl294ytAG+mAcpSIFunAhHGu99VnCGDjH4JJ
-----END PRIVATE KEY-----
`
	hintTestPubPEM = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEz8xg4c2JHbkyhrgeLMnuA39SOvO/
z65j0sOlv6IaJPbQH6d81AJdveMrQBvpgHKUiBbpwIRxrvfVZwhg4x+CSQ==
-----END PUBLIC KEY-----
`
	hintTestWant = "6c89d397bda4c3782d367dc34058c313e2fff56c3f1b2fce4e89933603c075d1"
)

func TestKeyHintIsModelSigningsPEMDigest(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub")
	if err := os.WriteFile(priv, []byte(hintTestPrivPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, []byte(hintTestPubPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != hintTestWant {
		t.Errorf("key id %s, want hex(sha256(PEM)) %s", s.KeyID(), hintTestWant)
	}
	if got := string(keypair{s: s}.GetHint()); got != hintTestWant {
		t.Errorf("bundle hint %s, want %s", got, hintTestWant)
	}
	p, err := s.PublicKeyPEM()
	if err != nil || string(p) != hintTestPubPEM {
		t.Errorf("public PEM differs from openssl's:\n%s", p)
	}
	trusted, err := LoadTrustedKeys(pub)
	if err != nil || trusted.IDs()[0] != hintTestWant {
		t.Errorf("trusted key id %v, %v", trusted.IDs(), err)
	}
}
