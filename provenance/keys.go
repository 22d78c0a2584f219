package provenance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// KeyType names a supported signing key algorithm.
type KeyType string

const (
	// KeyECDSAP256 is ECDSA on NIST P-256 with SHA-256, the Sigstore default.
	KeyECDSAP256 KeyType = "ecdsa-p256"
	// KeyEd25519 is pure Ed25519.
	KeyEd25519 KeyType = "ed25519"
)

// Default file names written by GenerateKey.
const (
	PrivateKeyFile = "signing.key"
	PublicKeyFile  = "signing.pub"
)

// Signer holds a private signing key. Its String, GoString and LogValue
// methods print only the algorithm and the key ID, so that a Signer can be
// logged or put in an error without leaking the key; there is no accessor
// for the private key.
type Signer struct {
	key     crypto.Signer
	keyType KeyType
	keyID   string
	source  string // where it was loaded from (a path or env:NAME), never the key
}

// LoadSigner loads a PEM private key (PKCS #8 "PRIVATE KEY", or SEC 1
// "EC PRIVATE KEY") from source, which is one of:
//
//   - "env:NAME": the environment variable NAME holds the PEM text (or its
//     base64 encoding);
//   - a folder: a mounted Kubernetes secret; the one file in it that holds a
//     private key PEM block is used (Kubernetes' "..data" entries are skipped);
//   - a file path.
//
// Only ECDSA P-256 and Ed25519 keys are accepted. Errors name the source but
// never include key material.
func LoadSigner(source string) (*Signer, error) {
	pemBytes, where, err := readKeySource(source)
	if err != nil {
		return nil, err
	}
	key, err := parsePrivateKeyPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("provenance: signing key from %s: %w", where, err)
	}
	s, err := newSigner(key)
	if err != nil {
		return nil, fmt.Errorf("provenance: signing key from %s: %w", where, err)
	}
	s.source = where
	return s, nil
}

// GenerateKey creates a new key pair of the given type (KeyECDSAP256 when
// empty) and writes it to dir as PrivateKeyFile (PKCS #8 PEM, mode 0600) and
// PublicKeyFile (PKIX PEM, readable by cosign and sigstore-go). It refuses to
// overwrite existing files.
func GenerateKey(dir string, kt KeyType) (privPath, pubPath string, err error) {
	var key crypto.Signer
	switch kt {
	case KeyECDSAP256, "":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyEd25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return "", "", fmt.Errorf("provenance: unknown key type %q (want %s or %s)", kt, KeyECDSAP256, KeyEd25519)
	}
	if err != nil {
		return "", "", fmt.Errorf("provenance: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("provenance: encode private key: %w", err)
	}
	pubPEM, err := publicKeyPEM(key.Public())
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("provenance: %w", err)
	}
	privPath = filepath.Join(dir, PrivateKeyFile)
	pubPath = filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("provenance: %s already exists; refusing to overwrite a key", p)
		}
	}
	if err := writeNew(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
		return "", "", err
	}
	return privPath, pubPath, nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("provenance: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("provenance: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("provenance: write %s: %w", path, err)
	}
	return nil
}

// KeyID returns the key's identifier: the lowercase hex sha256 of its PKIX
// "PUBLIC KEY" PEM, which is also the key hint in bundles (model_signing's
// convention, see keyID).
func (s *Signer) KeyID() string { return s.keyID }

// Type returns the key algorithm.
func (s *Signer) Type() KeyType { return s.keyType }

// PublicKey returns the public half of the key.
func (s *Signer) PublicKey() crypto.PublicKey { return s.key.Public() }

// PublicKeyPEM returns the public key as a PKIX "PUBLIC KEY" PEM block.
func (s *Signer) PublicKeyPEM() ([]byte, error) { return publicKeyPEM(s.key.Public()) }

// String describes the signer without its key material.
func (s Signer) String() string {
	return fmt.Sprintf("provenance.Signer{%s keyid=%s source=%s}", s.keyType, s.keyID, s.source)
}

// GoString is String, so that %#v does not print the private key.
func (s Signer) GoString() string { return s.String() }

// Format prints String for every verb, so that no verb reaches the key.
func (s Signer) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue makes slog print the algorithm and key ID only.
func (s Signer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("type", string(s.keyType)), slog.String("keyid", s.keyID))
}

func newSigner(key crypto.Signer) (*Signer, error) {
	var kt KeyType
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA curve %s is not supported (want P-256)", k.Curve.Params().Name)
		}
		kt = KeyECDSAP256
	case ed25519.PrivateKey:
		kt = KeyEd25519
	default:
		return nil, fmt.Errorf("key type %T is not supported (want ECDSA P-256 or Ed25519)", key)
	}
	id, err := keyID(key.Public())
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, keyType: kt, keyID: id}, nil
}

// keyID is the hint model_signing writes and checks: in
// model-transparency's src/model_signing/_signing/sign_ec_key.py, the
// signer's _get_verification_material and the verifier's _verify_bundle both
// take hashlib.sha256(public_bytes(PEM, SubjectPublicKeyInfo)).digest().hex(),
// and the verifier raises "Key mismatch" when a bundle's hint differs. The
// PEM is the one publicKeyPEM writes (64-character base64 lines, final
// newline), byte for byte what Python's cryptography writes.
func keyID(pub crypto.PublicKey) (string, error) {
	p, err := publicKeyPEM(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(p)
	return hex.EncodeToString(sum[:]), nil
}

func publicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("provenance: encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// readKeySource returns the PEM bytes and a printable name of the source.
func readKeySource(source string) ([]byte, string, error) {
	if name, ok := strings.CutPrefix(source, "env:"); ok {
		v, set := os.LookupEnv(name)
		if !set || strings.TrimSpace(v) == "" {
			return nil, source, fmt.Errorf("provenance: signing key from %s: variable is not set or empty", source)
		}
		b := []byte(v)
		if !strings.Contains(v, "-----BEGIN") {
			dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil {
				return nil, source, fmt.Errorf("provenance: signing key from %s: neither PEM nor base64-encoded PEM", source)
			}
			b = dec
		}
		return b, source, nil
	}
	fi, err := os.Stat(source)
	if err != nil {
		return nil, source, fmt.Errorf("provenance: signing key: %w", err)
	}
	if !fi.IsDir() {
		b, err := os.ReadFile(source)
		if err != nil {
			return nil, source, fmt.Errorf("provenance: signing key: %w", err)
		}
		return b, source, nil
	}
	// A mounted secret: files (often symlinks into ..data) named by the
	// secret's keys. Pick the one file holding a private key.
	entries, err := os.ReadDir(source)
	if err != nil {
		return nil, source, fmt.Errorf("provenance: signing key: %w", err)
	}
	var found []string
	var data []byte
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(source, e.Name())
		st, err := os.Stat(p) // follows the secret's symlinks
		if err != nil || !st.Mode().IsRegular() || st.Size() > 1<<20 {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if hasPrivateKeyBlock(b) {
			found = append(found, e.Name())
			data = b
		}
	}
	sort.Strings(found)
	switch len(found) {
	case 0:
		return nil, source, fmt.Errorf("provenance: signing key: no file in folder %s holds a PEM private key", source)
	case 1:
		return data, filepath.Join(source, found[0]), nil
	default:
		return nil, source, fmt.Errorf("provenance: signing key: folder %s holds several private keys (%s); name the file", source, strings.Join(found, ", "))
	}
}

func hasPrivateKeyBlock(b []byte) bool {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return false
		}
		if strings.HasSuffix(blk.Type, "PRIVATE KEY") {
			return true
		}
	}
}

// CosignPasswordEnv holds the password of a cosign-encrypted signing key,
// the variable cosign reads.
const CosignPasswordEnv = "COSIGN_PASSWORD"

// parsePrivateKeyPEM finds the first private key block. Its errors never
// quote the input.
func parsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM private key block found")
		}
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, errors.New("malformed PKCS #8 private key")
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("key type %T cannot sign", k)
			}
			return s, nil
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(blk.Bytes)
			if err != nil {
				return nil, errors.New("malformed SEC 1 EC private key")
			}
			return k, nil
		case "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY":
			// What `cosign generate-key-pair` writes: decrypted by sigstore's
			// own loader (cryptoutils.UnmarshalPEMToPrivateKey, scrypt and
			// secretbox), with the password cosign itself reads.
			pw, ok := os.LookupEnv(CosignPasswordEnv)
			if !ok {
				return nil, fmt.Errorf("the key is a cosign-encrypted key (%s): set %s to its password (Helm: signing.passwordKey), or use an unencrypted key (loraflow keygen)", blk.Type, CosignPasswordEnv)
			}
			k, err := cryptoutils.UnmarshalPEMToPrivateKey(pem.EncodeToMemory(blk), cryptoutils.StaticPasswordFunc([]byte(pw)))
			if err != nil {
				return nil, fmt.Errorf("decrypting the cosign key (%s) with %s: %w", blk.Type, CosignPasswordEnv, err)
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("key type %T cannot sign", k)
			}
			return s, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("encrypted PKCS #8 keys (%s) are not supported; store the key unencrypted in a secret, or encrypt it with cosign (COSIGN_PASSWORD)", blk.Type)
		}
	}
}

// keypair adapts a Signer to sigstore-go's sign.Keypair.
type keypair struct{ s *Signer }

func (k keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	if k.s.keyType == KeyEd25519 {
		return protocommon.HashAlgorithm_HASH_ALGORITHM_UNSPECIFIED
	}
	return protocommon.HashAlgorithm_SHA2_256
}

func (k keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	if k.s.keyType == KeyEd25519 {
		return protocommon.PublicKeyDetails_PKIX_ED25519
	}
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}

func (k keypair) GetHint() []byte { return []byte(k.s.keyID) }

func (k keypair) GetKeyAlgorithm() string {
	if k.s.keyType == KeyEd25519 {
		return "ED25519"
	}
	return "ECDSA"
}

func (k keypair) GetPublicKey() crypto.PublicKey { return k.s.key.Public() }

func (k keypair) GetPublicKeyPem() (string, error) {
	b, err := k.s.PublicKeyPEM()
	return string(b), err
}

func (k keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	if k.s.keyType == KeyEd25519 {
		sig, err := k.s.key.Sign(rand.Reader, data, crypto.Hash(0))
		if err != nil {
			return nil, nil, fmt.Errorf("provenance: sign: %w", err)
		}
		return sig, data, nil
	}
	sum := sha256.Sum256(data)
	sig, err := k.s.key.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return nil, nil, fmt.Errorf("provenance: sign: %w", err)
	}
	return sig, sum[:], nil
}

// TrustedKeys is the set of public keys whose signatures Verify accepts.
// Keep the old key in the set while artifacts signed with it are still in
// use (key rotation, see docs/provenance.md).
type TrustedKeys struct {
	keys []trustedKey
}

type trustedKey struct {
	id     string
	pub    crypto.PublicKey
	source string
}

// NewTrustedKeys builds a set from ECDSA P-256 or Ed25519 public keys.
func NewTrustedKeys(pubs ...crypto.PublicKey) (*TrustedKeys, error) {
	t := &TrustedKeys{}
	for i, p := range pubs {
		if err := t.add(p, fmt.Sprintf("key %d", i)); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// LoadTrustedKeys reads public keys from PEM files (each may hold several
// "PUBLIC KEY" blocks) or from folders of such files (*.pub, *.pem).
func LoadTrustedKeys(paths ...string) (*TrustedKeys, error) {
	t := &TrustedKeys{}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("provenance: trusted key: %w", err)
		}
		files := []string{p}
		if fi.IsDir() {
			files = nil
			for _, pat := range []string{"*.pub", "*.pem"} {
				m, _ := filepath.Glob(filepath.Join(p, pat))
				files = append(files, m...)
			}
			sort.Strings(files)
			if len(files) == 0 {
				return nil, fmt.Errorf("provenance: trusted keys: folder %s has no *.pub or *.pem file", p)
			}
		}
		for _, f := range files {
			if err := t.loadFile(f); err != nil {
				return nil, err
			}
		}
	}
	if len(t.keys) == 0 {
		return nil, errors.New("provenance: no trusted keys given")
	}
	return t, nil
}

func (t *TrustedKeys) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("provenance: trusted key: %w", err)
	}
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if strings.HasSuffix(blk.Type, "PRIVATE KEY") {
			return fmt.Errorf("provenance: trusted key %s is a private key; give the public key (%s)", path, PublicKeyFile)
		}
		if blk.Type != "PUBLIC KEY" {
			continue
		}
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return fmt.Errorf("provenance: trusted key %s: %w", path, err)
		}
		if err := t.add(pub, path); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("provenance: trusted key %s: no PEM \"PUBLIC KEY\" block", path)
	}
	return nil
}

func (t *TrustedKeys) add(pub crypto.PublicKey, source string) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("provenance: trusted key %s: ECDSA curve %s is not supported (want P-256)", source, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("provenance: trusted key %s: type %T is not supported (want ECDSA P-256 or Ed25519)", source, pub)
	}
	id, err := keyID(pub)
	if err != nil {
		return err
	}
	for _, k := range t.keys {
		if k.id == id {
			return nil
		}
	}
	t.keys = append(t.keys, trustedKey{id: id, pub: pub, source: source})
	return nil
}

// IDs returns the key IDs in the set, in the order they were added.
func (t *TrustedKeys) IDs() []string {
	ids := make([]string, len(t.keys))
	for i, k := range t.keys {
		ids[i] = k.id
	}
	return ids
}

// Len returns the number of keys.
func (t *TrustedKeys) Len() int {
	if t == nil {
		return 0
	}
	return len(t.keys)
}
