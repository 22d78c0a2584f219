package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/loraflow/loraflow/provenance"
)

// signatureCheck is the adapter commands' verify-before-use: an adapter
// with a provenance bundle beside it is verified (signature, every file,
// its chain where reachable, as `loraflow verify` does) before it is
// loaded, and a tampered one is refused. --no-verify-signature is the
// explicit way out.
type signatureCheck struct {
	keys []string
	skip bool
}

func (c *signatureCheck) flags(f *pflag.FlagSet) {
	f.StringArrayVar(&c.keys, "key", nil, "public key (PEM file or folder of *.pub) trusted to have signed the adapters' provenance (repeat while rotating keys)")
	f.BoolVar(&c.skip, "no-verify-signature", false, "use the adapters without verifying their signed provenance")
}

// check verifies each adapter folder that carries a provenance bundle.
func (c *signatureCheck) check(ctx context.Context, warn io.Writer, dirs []string) error {
	var verifier *provenance.Verifier
	for _, d := range dirs {
		if _, err := os.Stat(provenance.BundlePath(d, provenance.BundleProvenance)); errors.Is(err, os.ErrNotExist) {
			continue // unsigned (a PEFT adapter from elsewhere): nothing to check against
		}
		if c.skip {
			fmt.Fprintf(warn, "warning: not verifying the signed provenance of %s (--no-verify-signature)\n", d)
			continue
		}
		if verifier == nil {
			if len(c.keys) == 0 {
				return fmt.Errorf("adapter %s has signed provenance: give --key PUBLIC_KEY to verify it (or --no-verify-signature to use it unverified)", d)
			}
			keys, err := provenance.LoadTrustedKeys(c.keys...)
			if err != nil {
				return err
			}
			if verifier, err = provenance.NewVerifier(keys); err != nil {
				return err
			}
		}
		// The user points at the adapter, so no digest is expected of it
		// (as in `loraflow verify`); it must be an adapter, intact, signed
		// by a trusted key.
		pol, err := provenance.NewPolicy(provenance.WithoutArtifactDigestUnsafe(), provenance.WithKinds(provenance.KindAdapter))
		if err != nil {
			return err
		}
		if _, err := verifier.Verify(ctx, d, pol); err != nil {
			return fmt.Errorf("adapter %s: refusing it: %w", d, err)
		}
	}
	return nil
}
