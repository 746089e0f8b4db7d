package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
)

// generatePKCS11 creates an ECDSA P-256 key pair in the token a pkcs11:
// URI names. It is set by pkcs11.go in builds with -tags pkcs11.
var generatePKCS11 func(ctx context.Context, uri string) (keys.Signer, error)

func (e *env) keyGenerateCmd() *cobra.Command {
	var (
		out, pkcs11URI string
		pass           passphraseSource
	)
	cmd := &cobra.Command{
		Use:   "generate --out FILE [--pkcs11 URI]",
		Short: "Create one signing key and write its public key to FILE.pub",
		Long: `Create one new Ed25519 signing key, encrypted with its own passphrase (prompted twice on a
terminal, or FERRY_PASSPHRASE, or --passphrase-file), in FILE (mode 0600), and its public key in
FILE.pub (the TUF key object: keytype, scheme, keyval.public). The key ID is printed alone on
stdout. FILE.pub is what the key's holder hands to the repository owner (ferry init --root-key,
ferry root propose --add-key); FILE never leaves the holder. Existing files are never overwritten.

With --pkcs11 URI the key is an ECDSA P-256 key pair created inside the PKCS#11 token the URI
names (token=..., object= and/or id=, pin-source=file:... or pin-value=..., module-path=...); the
private key is not extractable, and only FILE.pub is written. This needs a ferry built with
-tags pkcs11. See docs/signers.md.`,
		Example: `  ferry key generate --out ./alice-root.key        # writes alice-root.key and alice-root.key.pub
  FERRY_PASSPHRASE=... ferry key generate --out ./ci-hello.key
  ferry key generate --out ./hsm-root --pkcs11 'pkcs11:token=ferry;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/ferry/pin'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if pkcs11URI != "" {
				return e.generatePKCS11(cmd.Context(), out, pkcs11URI)
			}
			return e.generateFile(out, pass)
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "private key file to create; the public key goes to FILE.pub (required)")
	f.StringVar(&pkcs11URI, "pkcs11", "", "create the key in the PKCS#11 token this pkcs11: URI names instead")
	f.StringVar(&pass.file, "passphrase-file", "", "read the new key's passphrase from this file")
	cmd.MarkFlagRequired("out")
	return cmd
}

// generateFile creates an encrypted Ed25519 key in out and its public key
// in out.pub.
func (e *env) generateFile(out string, src passphraseSource) error {
	pubFile := out + ".pub"
	for _, p := range []string{out, pubFile} {
		if err := refuseExisting(p); err != nil {
			return err
		}
	}
	p, err := e.newPassphrase(src)
	if err != nil {
		return err
	}
	wf, err := e.insecureWorkFactor()
	if err != nil {
		return err
	}
	priv, err := keys.Generate()
	if err != nil {
		return err
	}
	if err := keys.Save(out, priv, p, wf); err != nil {
		return err
	}
	s, err := keys.NewFileSigner(priv)
	if err != nil {
		return err
	}
	if err := keys.WritePublic(pubFile, s.Key()); err != nil {
		os.Remove(out) // never used: a key without its .pub is only confusing
		return err
	}
	return e.printKeyID(s.Key(), out+" (encrypted private key) and "+pubFile)
}

func (e *env) generatePKCS11(ctx context.Context, out, uri string) error {
	if !strings.HasPrefix(uri, "pkcs11:") {
		return fmt.Errorf("--pkcs11 %q: want a pkcs11: URI", uri)
	}
	if generatePKCS11 == nil {
		return withHint(errors.New("this ferry was built without PKCS#11 support"),
			"build it with: go build -tags pkcs11 ./cmd/ferry (needs cgo)")
	}
	pubFile := out + ".pub"
	if err := refuseExisting(pubFile); err != nil {
		return err
	}
	s, err := generatePKCS11(ctx, uri)
	if err != nil {
		return err
	}
	if err := keys.WritePublic(pubFile, s.Key()); err != nil {
		return err
	}
	return e.printKeyID(s.Key(), pubFile+" (the private key stays in the token)")
}

// refuseExisting fails if anything exists at path: generate never replaces
// a key.
func refuseExisting(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return withHint(fmt.Errorf("%s already exists: ferry key generate never overwrites a key", path),
			"choose another --out, or move the old key away first")
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return nil
}

func (e *env) printKeyID(k *metadata.Key, wrote string) error {
	id, err := k.ID()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "ferry: wrote %s\n", wrote)
	fmt.Fprintln(e.stdout, id)
	return nil
}

func (e *env) keyPublicCmd() *cobra.Command {
	var (
		out  string
		pass passphraseSource
	)
	cmd := &cobra.Command{
		Use:   "public --out PUBFILE REF",
		Short: "Write the public key of any signer (key file, pkcs11: or awskms:// URI) to PUBFILE",
		Long: `Open the signer REF (the path of an encrypted key file, a pkcs11: URI or an awskms:// URI),
write its public key to PUBFILE in the format ferry key generate writes, and print its key ID.
For a KMS key, this is how its public key reaches ferry init --root-key or a ceremony. Nothing
is signed. PUBFILE is never overwritten.`,
		Example: `  ferry key public --out kms-timestamp.pub 'awskms://alias/ferry-timestamp?region=eu-west-1'
  ferry key public --out alice-root.key.pub ./alice-root.key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := refuseExisting(out); err != nil {
				return err
			}
			s, err := keys.Open(cmd.Context(), args[0], e.passphraseFunc(pass))
			if err != nil {
				return err
			}
			if err := keys.WritePublic(out, s.Key()); err != nil {
				return err
			}
			return e.printKeyID(s.Key(), out)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "public key file to create (required)")
	cmd.Flags().StringVar(&pass.file, "passphrase-file", "", "read a key file's passphrase from this file")
	cmd.MarkFlagRequired("out")
	return cmd
}
