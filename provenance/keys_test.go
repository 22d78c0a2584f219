package provenance

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSignerSources(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := GenerateKey(filepath.Join(dir, "k"), KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode: %v %v", fi.Mode(), err)
	}
	if _, _, err := GenerateKey(filepath.Join(dir, "k"), KeyEd25519); err == nil {
		t.Fatal("GenerateKey overwrote an existing key")
	}
	pemText, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	want, err := LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := LoadTrustedKeys(pub)
	if err != nil || trusted.IDs()[0] != want.KeyID() {
		t.Fatalf("public key file does not match: %v", err)
	}

	t.Setenv("LF_TEST_KEY", string(pemText))
	t.Setenv("LF_TEST_KEY_B64", base64.StdEncoding.EncodeToString(pemText))

	// A Kubernetes secret volume: files are symlinks into ..data.
	secret := filepath.Join(dir, "secret")
	data := filepath.Join(secret, "..2026_11_28")
	writeFile(t, filepath.Join(data, "signing.key"), pemText)
	writeFile(t, filepath.Join(data, "signing.pub"), []byte("not a private key"))
	if err := os.Symlink("..2026_11_28", filepath.Join(secret, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"signing.key", "signing.pub"} {
		if err := os.Symlink(filepath.Join("..data", n), filepath.Join(secret, n)); err != nil {
			t.Fatal(err)
		}
	}

	for _, src := range []string{"env:LF_TEST_KEY", "env:LF_TEST_KEY_B64", secret} {
		s, err := LoadSigner(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if s.KeyID() != want.KeyID() || s.Type() != KeyEd25519 {
			t.Fatalf("%s: got %s", src, s)
		}
	}

	// Two private keys in one secret folder: ambiguous.
	writeFile(t, filepath.Join(secret, "other.key"), pemText)
	if _, err := LoadSigner(secret); err == nil || !strings.Contains(err.Error(), "several") {
		t.Fatalf("ambiguous secret folder: %v", err)
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) { testKeyNeverPrinted(t, kt) })
	}
}

func testKeyNeverPrinted(t *testing.T, kt KeyType) {
	dir := t.TempDir()
	priv, pub, err := GenerateKey(dir, kt)
	if err != nil {
		t.Fatal(err)
	}
	pemText, _ := os.ReadFile(priv)
	s, err := LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	body := secretBody(pemText)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("loaded", "signer", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%v", *s), fmt.Sprintf("%x", *s), fmt.Sprintf("%d", *s)} {
		if out != s.String() {
			t.Fatalf("formatting prints more than the description: %s", out)
		}
	}
	for _, out := range []string{fmt.Sprintf("%+v", []any{s, *s}), logs.String()} {
		if strings.Contains(out, body[:16]) || strings.Contains(out, "PRIVATE") {
			t.Fatalf("key material printed: %s", out)
		}
		if !strings.Contains(out, s.KeyID()) {
			t.Fatalf("key ID not printed: %s", out)
		}
	}

	// Corrupt keys: the error names the source, not the content.
	corrupt := strings.Replace(string(pemText), body[20:40], strings.Repeat("A", 20), 1)
	t.Setenv("LF_BAD_KEY", corrupt)
	_, err = LoadSigner("env:LF_BAD_KEY")
	if err == nil || !strings.Contains(err.Error(), "env:LF_BAD_KEY") || strings.Contains(err.Error(), body[:16]) {
		t.Fatalf("corrupt key error: %v", err)
	}
	t.Setenv("LF_EMPTY", "")
	if _, err := LoadSigner("env:LF_EMPTY"); err == nil {
		t.Fatal("empty variable accepted")
	}
	// A private key given as a trusted key is refused, without printing it.
	if _, err := LoadTrustedKeys(priv); err == nil || strings.Contains(err.Error(), body[:16]) {
		t.Fatalf("private key as trusted key: %v", err)
	}
	if _, err := LoadTrustedKeys(pub); err != nil {
		t.Fatal(err)
	}
}

func TestTrustedKeysFolderAndBundleFile(t *testing.T) {
	dir := t.TempDir()
	_, pub1, err := GenerateKey(filepath.Join(dir, "a"), KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	_, pub2, err := GenerateKey(filepath.Join(dir, "b"), KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(pub1)
	b2, _ := os.ReadFile(pub2)
	keysDir := filepath.Join(dir, "trusted")
	writeFile(t, filepath.Join(keysDir, "2026.pub"), b1)
	writeFile(t, filepath.Join(keysDir, "2027.pub"), b2)
	writeFile(t, filepath.Join(dir, "all.pem"), append(append([]byte{}, b1...), b2...))
	for _, src := range []string{keysDir, filepath.Join(dir, "all.pem")} {
		k, err := LoadTrustedKeys(src)
		if err != nil || k.Len() != 2 {
			t.Fatalf("%s: %v, %d keys", src, err, k.Len())
		}
	}
}

// secretBody returns the base64 body of a PEM file, without its armour.
func secretBody(pemText []byte) string {
	var b strings.Builder
	for _, l := range strings.Split(string(pemText), "\n") {
		if !strings.HasPrefix(l, "-----") {
			b.WriteString(l)
		}
	}
	return b.String()
}
