package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/loraflow/loraflow/internal/temporalx"
	"github.com/loraflow/loraflow/provenance"
)

func init() { register(newVerifyCmd) }

func newVerifyCmd() *cobra.Command {
	var (
		keys        []string
		expectBase  string
		expectData  string
		kinds       []string
		requireDeps bool
		shallowDeps bool
		jsonOut     bool
	)
	cmd := &cobra.Command{
		Use:   "verify PATH...",
		Short: "Verify an artifact's signed provenance, files and chain",
		Long: `Verify checks an artifact (an adapter or model folder, an evaluation report file,
or its .provenance.sigstore.json bundle): the bundle signatures against the trusted
public keys, every file's sha256 (no file changed, missing, renamed or added), the
companion bundles (model-signing, eval, carbon), and the chain to its parents, base
model and dataset where they can be reached. It prints a verdict naming the first
file or link that fails, and exits non-zero on failure.

Give several --key flags (or a folder of *.pub files) while rotating keys. Without
--key, verify trusts the key ` + "`loraflow run`" + `'s embedded default signs with
(~/.local/share/loraflow/keys/signing.pub), if it exists.`,
		Example: `  loraflow verify artifacts/adapter --key keys/signing.pub
  loraflow verify artifacts/merged --key keys/2026.pub --key keys/2027.pub --require-deps`,
		Args: minimumArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keys) == 0 {
				k, err := defaultVerifyKey()
				if err != nil {
					return err
				}
				keys = []string{k}
				if !jsonOut {
					fmt.Fprintf(cmd.ErrOrStderr(), "verify: trusting the embedded default's key %s (give --key to trust others)\n", k)
				}
			}
			trusted, err := provenance.LoadTrustedKeys(keys...)
			if err != nil {
				return err
			}
			var opts []provenance.VerifyOption
			if expectBase != "" {
				opts = append(opts, provenance.WithExpectedDependency(provenance.RoleBaseModel, expectBase))
			}
			if expectData != "" {
				opts = append(opts, provenance.WithExpectedDependency(provenance.RoleDataset, expectData))
			}
			for _, k := range kinds {
				opts = append(opts, provenance.WithKind(provenance.Kind(k)))
			}
			if requireDeps {
				opts = append(opts, provenance.WithRequiredDependencies())
			}
			if shallowDeps {
				opts = append(opts, provenance.WithShallowDependencies())
			}
			failed := 0
			var verdicts []*provenance.Verdict
			for _, p := range args {
				v, err := provenance.Verify(cmd.Context(), p, trusted, opts...)
				if err != nil {
					var ve *provenance.VerificationError
					if !errors.As(err, &ve) {
						return err
					}
					failed++
				}
				verdicts = append(verdicts, v)
				if !jsonOut {
					printVerdict(cmd.OutOrStdout(), v)
				}
			}
			if jsonOut {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(verdicts); err != nil {
					return err
				}
			}
			if failed > 0 {
				return fmt.Errorf("verify: %d of %d artifacts failed verification", failed, len(args))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&keys, "key", nil, "trusted public key PEM file or folder of *.pub files (repeatable)")
	f.StringVar(&expectBase, "expect-base", "", "require this base model folder digest (sha256 hex)")
	f.StringVar(&expectData, "expect-dataset", "", "require this dataset snapshot digest (sha256 hex)")
	f.StringSliceVar(&kinds, "kind", nil, "require the artifact kind (adapter, merged-model, eval-report)")
	f.BoolVar(&requireDeps, "require-deps", false, "fail when a dependency cannot be reached for re-checking")
	f.BoolVar(&shallowDeps, "shallow", false, "do not re-hash base model and dataset (parents are still verified)")
	f.BoolVar(&jsonOut, "json", false, "print the verdicts as JSON")
	return cmd
}

func printVerdict(w io.Writer, v *provenance.Verdict) {
	if v.OK() {
		fmt.Fprintf(w, "VERIFIED  %s\n", v.Path)
	} else {
		fmt.Fprintf(w, "FAILED    %s\n", v.Path)
	}
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(w, "  %-12s %s\n", name, value)
		}
	}
	field("kind", string(v.Kind))
	field("sha256", v.SHA256)
	field("provenance", v.ProvenanceSHA256)
	field("signed by", v.KeyID)
	field("invocation", v.InvocationID)
	for _, c := range v.Checks {
		mark := "ok  "
		if c.Skipped {
			mark = "skip"
		}
		fmt.Fprintf(w, "  [%s] %s %s: %s\n", mark, c.Name, c.Subject, c.Detail)
	}
	if e := v.Err; e != nil {
		fmt.Fprintf(w, "  [FAIL] %s: %s\n", e.Reason, e.Path)
		detail := e.Detail
		if e.Err != nil {
			if detail != "" {
				detail += ": "
			}
			detail += e.Err.Error()
		}
		if detail != "" {
			fmt.Fprintf(w, "         %s\n", strings.ReplaceAll(detail, "\n", "\n         "))
		}
	}
}

// defaultVerifyKey returns the public key of the embedded default's signing
// key (what `loraflow run` generates under its data folder), or an error
// saying that --key is needed.
func defaultVerifyKey() (string, error) {
	dir, err := temporalx.DataDir()
	if err != nil {
		return "", fmt.Errorf("verify: give --key PUBLIC_KEY (%w)", err)
	}
	p := embeddedPublicKey(dir)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("verify: give --key PUBLIC_KEY: no embedded default key at %s (`loraflow run` makes one)", p)
	}
	return p, nil
}
