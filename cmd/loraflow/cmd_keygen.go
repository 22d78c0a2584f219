package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/loraflow/loraflow/provenance"
)

func init() { register(newKeygenCmd) }

func newKeygenCmd() *cobra.Command {
	var (
		out     string
		keyType string
	)
	cmd := &cobra.Command{
		Use:   "keygen --out DIR",
		Short: "Create a signing key pair for artifact attestations",
		Long: `Keygen writes DIR/` + provenance.PrivateKeyFile + ` (PKCS #8 PEM, mode 0600) and DIR/` + provenance.PublicKeyFile + `
(PKIX PEM). Give the private key to workers (a file, env:VAR, or a Kubernetes secret
folder); give the public key to whoever verifies (loraflow verify --key, cosign
verify-blob-attestation --key). It never overwrites an existing key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			priv, pub, err := provenance.GenerateKey(out, provenance.KeyType(keyType))
			if err != nil {
				return err
			}
			s, err := provenance.LoadSigner(priv)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "private key  %s  (keep secret)\n", priv)
			fmt.Fprintf(w, "public key   %s\n", pub)
			fmt.Fprintf(w, "type         %s\n", s.Type())
			fmt.Fprintf(w, "key id       %s\n", s.KeyID())
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "folder to write the key pair to")
	cmd.Flags().StringVar(&keyType, "type", string(provenance.KeyECDSAP256), "key type: ecdsa-p256 or ed25519")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
