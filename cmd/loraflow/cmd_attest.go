package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/loraflow/loraflow/internal/temporalx"
	"github.com/loraflow/loraflow/provenance"
)

func init() { register(newAttestCmd) }

// attestOptions are what `loraflow attest` signs: an artifact made outside
// the pipeline and what it was made from.
type attestOptions struct {
	path       string
	kind       provenance.Kind
	signingKey string
	parents    []string
	base       string
	datasets   []string
	trustKeys  []string
	madeBy     string
}

func newAttestCmd() *cobra.Command {
	var (
		o    attestOptions
		kind string
	)
	cmd := &cobra.Command{
		Use:   "attest PATH --kind adapter|merged-model --signing-key KEY [--parent DIR]... [--base DIR] [--dataset DIR]...",
		Short: "Sign an adapter or model made on the command line (combine, merge) with the pipeline's provenance bundles",
		Long: `Attest signs an adapter or merged model that the pipeline did not make (loraflow
combine, loraflow merge, or an adapter trained elsewhere) with the key you name, and
writes the same Sigstore bundles beside it as the pipeline's Attest does: SLSA
provenance, model-signing (folder digest), each verifiable by "loraflow verify" and
by cosign.

The chain goes through --parent: each parent (the adapters given to combine or
merge) must carry its own signed provenance, which is verified first (with --key,
default the embedded default's public key), and becomes a parent dependency with
its attestation digest. The base model and the dataset snapshots are the parents'
unless --base / --dataset name them; an adapter without attested parents (trained
elsewhere) needs both. All parents must name the same base model.`,
		Example: `  loraflow combine --adapter a1 --adapter a2 --weight 0.5 --weight 0.5 --method cat --out both
  loraflow attest both --kind adapter --parent a1 --parent a2 --signing-key keys/signing.key
  loraflow merge --base base --adapter both --out merged
  loraflow attest merged --kind merged-model --parent both --signing-key keys/signing.key
  loraflow verify merged --key keys/signing.pub`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := resolveSettings(cmd)
			if err != nil {
				return err
			}
			o.path, o.kind, o.signingKey = args[0], provenance.Kind(kind), cfg.get("signing-key")
			if o.signingKey == "" {
				hint := ""
				if dir, err := temporalx.DataDir(); err == nil {
					hint = fmt.Sprintf(" (the embedded default signs with %s)", filepath.Join(embeddedKeyDir(dir), provenance.PrivateKeyFile))
				}
				return fmt.Errorf("attest: name the signing key: --signing-key KEY or LORAFLOW_SIGNING_KEY%s", hint)
			}
			att, err := attestArtifact(cmd.Context(), cmd.ErrOrStderr(), o)
			if err != nil {
				return fmt.Errorf("attest: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "attested %s %s\n  sha256 %s\n", att.Kind, att.Path, att.SHA256)
			for _, b := range att.Bundles {
				fmt.Fprintf(out, "  %-13s %s\n", b.Kind, b.Path)
			}
			fmt.Fprintf(out, "  verify        loraflow verify %s --key <the public key of %s>\n", att.Path, o.signingKey)
			return nil
		},
	}
	addSettings(cmd.Flags(), "signing-key")
	f := cmd.Flags()
	f.StringVar(&kind, "kind", "", "what PATH is: adapter or merged-model")
	f.StringArrayVar(&o.parents, "parent", nil, "attested adapter PATH was made from (repeat; the --adapter folders of combine or merge)")
	f.StringVar(&o.base, "base", "", "base model folder (default: the parents')")
	f.StringArrayVar(&o.datasets, "dataset", nil, "dataset snapshot folder or file an adapter was trained on (default: the parents'; repeatable)")
	f.StringArrayVar(&o.trustKeys, "key", nil, "public key trusted to have signed the parents (PEM file or folder of *.pub; default: the embedded default's)")
	f.StringVar(&o.madeBy, "made-by", "", "the command that made PATH, recorded in the provenance (e.g. \"loraflow combine --method cat ...\")")
	_ = cmd.MarkFlagRequired("kind")
	return cmd
}

// attestArtifact verifies the parents, builds the dependencies and signs.
func attestArtifact(ctx context.Context, warn io.Writer, o attestOptions) (*provenance.Attestation, error) {
	switch o.kind {
	case provenance.KindAdapter, provenance.KindMergedModel:
	default:
		return nil, fmt.Errorf("--kind %q: want adapter or merged-model (evaluation reports are attested by the pipeline)", o.kind)
	}
	fi, err := os.Stat(o.path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a folder (an adapter or model folder)", o.path)
	}
	if o.kind == provenance.KindMergedModel && len(o.parents) == 0 {
		return nil, errors.New("a merged model needs --parent: the attested adapter(s) merged into it")
	}
	signer, err := provenance.LoadSigner(o.signingKey)
	if err != nil {
		return nil, err
	}
	var deps []provenance.Dependency
	var baseDep *provenance.Dependency
	setBase := func(d provenance.Dependency, from string) error {
		if baseDep != nil && baseDep.SHA256 != d.SHA256 {
			return fmt.Errorf("%s names base model %s (sha256 %s), but %s (sha256 %s) was named before: the parents were made on different bases",
				from, d.URI, d.SHA256, baseDep.URI, baseDep.SHA256)
		}
		if baseDep == nil {
			baseDep = &d
		}
		return nil
	}
	if o.base != "" {
		d, err := pathDependency(ctx, provenance.RoleBaseModel, o.base)
		if err != nil {
			return nil, err
		}
		if err := setBase(d, "--base"); err != nil {
			return nil, err
		}
	}
	datasets := map[string]bool{}
	addDataset := func(d provenance.Dependency) {
		if !datasets[d.SHA256] {
			datasets[d.SHA256] = true
			deps = append(deps, d)
		}
	}
	for _, p := range o.datasets {
		d, err := pathDependency(ctx, provenance.RoleDataset, p)
		if err != nil {
			return nil, err
		}
		addDataset(d)
	}
	if len(o.parents) > 0 {
		verifier, err := parentVerifier(warn, o.trustKeys)
		if err != nil {
			return nil, err
		}
		pol, err := provenance.NewPolicy(provenance.WithoutArtifactDigestUnsafe(), provenance.WithKinds(provenance.KindAdapter))
		if err != nil {
			return nil, err
		}
		for _, p := range o.parents {
			if _, err := os.Stat(provenance.BundlePath(p, provenance.BundleProvenance)); errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("parent %s has no signed provenance: attest it first (loraflow attest %s --kind adapter --base BASE --dataset DATA --signing-key KEY)", p, p)
			}
			v, err := verifier.Verify(ctx, p, pol)
			if err != nil {
				return nil, fmt.Errorf("parent %s: refusing it: %w", p, err)
			}
			abs, _ := filepath.Abs(p)
			deps = append(deps, provenance.Dependency{Role: provenance.RoleParent, Name: string(v.Kind), URI: "file://" + abs,
				SHA256: v.SHA256, Attestation: v.ProvenanceSHA256})
			for _, d := range v.Dependencies {
				switch d.Role {
				case provenance.RoleBaseModel:
					if err := setBase(d, "parent "+p); err != nil {
						return nil, err
					}
				case provenance.RoleDataset:
					if o.kind == provenance.KindAdapter && len(o.datasets) == 0 {
						addDataset(d)
					}
				}
			}
		}
	}
	if baseDep == nil {
		return nil, errors.New("no base model: give --base, or --parent adapters whose provenance names theirs")
	}
	if o.kind == provenance.KindAdapter && len(datasets) == 0 {
		return nil, errors.New("an adapter needs the dataset it was trained on: give --dataset, or --parent adapters whose provenance names theirs")
	}
	deps = append([]provenance.Dependency{*baseDep}, deps...)

	now := time.Now().UTC()
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		who += "@" + h
	}
	params := map[string]any{"tool": "loraflow attest", "kind": string(o.kind), "parents": o.parents}
	if o.madeBy != "" {
		params["made_by"] = o.madeBy
	}
	abs, err := filepath.Abs(o.path)
	if err != nil {
		return nil, err
	}
	return provenance.Attest(ctx, signer, provenance.Artifact{
		Kind: o.kind, Dir: abs, Dependencies: deps, ExternalParameters: params,
		InvocationID:   "loraflow-attest/" + now.Format("20060102T150405.000000000Z"),
		WorkerIdentity: who, StartedOn: now, FinishedOn: now,
	})
}

// pathDependency hashes a local folder or file as a dependency.
func pathDependency(ctx context.Context, role provenance.Role, p string) (provenance.Dependency, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return provenance.Dependency{}, err
	}
	digest, err := provenance.DigestPath(ctx, abs)
	if err != nil {
		return provenance.Dependency{}, fmt.Errorf("%s %s: %w", role, p, err)
	}
	return provenance.Dependency{Role: role, Name: filepath.Base(abs), URI: "file://" + abs, SHA256: digest}, nil
}

// parentVerifier trusts the given keys, or the embedded default's.
func parentVerifier(warn io.Writer, keys []string) (*provenance.Verifier, error) {
	if len(keys) == 0 {
		k, err := defaultVerifyKey()
		if err != nil {
			return nil, fmt.Errorf("verifying the parents: %w", err)
		}
		fmt.Fprintf(warn, "attest: verifying the parents with the embedded default's key %s (give --key to trust others)\n", k)
		keys = []string{k}
	}
	trusted, err := provenance.LoadTrustedKeys(keys...)
	if err != nil {
		return nil, err
	}
	return provenance.NewVerifier(trusted)
}
