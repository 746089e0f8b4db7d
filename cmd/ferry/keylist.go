package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
)

func (e *env) keyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "key",
		Short:   "Create, inspect and rotate signing keys",
		Example: "  ferry key generate --out ./alice-root.key\n  ferry key list --repo ./repo\n  ferry key rotate --repo ./repo --role timestamp --out ./rotate.json",
	}
	var dir string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list --repo DIR [--json]",
		Short: "List roles, their thresholds, key IDs and public keys",
		Long: `List every role of the repository (root, targets, snapshot, timestamp and one per
application) with its signature threshold, key IDs, public keys (Ed25519 hex, or "ecdsa:" and the
key's DER in base64) and the encrypted private key file. Reads only public metadata: no passphrase
needed.

` + jsonHelp,
		Example: "  ferry key list --repo ./repo\n  ferry key list --repo ./repo --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := repo.Keys(dir)
			if err != nil {
				return err
			}
			if asJSON {
				for _, k := range ks {
					if err := writeJSONLine(e.stdout, keyJSON{Role: k.Role, Threshold: k.Threshold, KeyID: k.KeyID, PublicKey: k.PublicKey, KeyFile: k.File}); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROLE\tTHRESHOLD\tKEY ID\tPUBLIC KEY\tKEY FILE")
			for _, k := range ks {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", k.Role, k.Threshold, k.KeyID, oneLineKey(k.PublicKey), keyFileShown(k))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&dir, "repo", "", "repository directory (required)")
	list.Flags().BoolVar(&asJSON, "json", false, "print each key as a JSON object on a line (see docs/json.md)")
	list.MarkFlagRequired("repo")
	cmd.AddCommand(list, e.keyGenerateCmd(), e.keyPublicCmd(), e.keyRotateCmd())
	return cmd
}

// oneLineKey shows a public key on one line: an Ed25519 key as its hex,
// an ECDSA key (a PEM block) as "ecdsa:" and the base64 of its DER.
func oneLineKey(pub string) string {
	if !strings.HasPrefix(pub, "-----BEGIN") {
		return pub
	}
	var b strings.Builder
	b.WriteString("ecdsa:")
	for _, line := range strings.Split(pub, "\n") {
		if line != "" && !strings.HasPrefix(line, "-----") {
			b.WriteString(strings.TrimSpace(line))
		}
	}
	return b.String()
}

// keyFileShown is where a key is kept: its file, or for an online key
// without one, a note that a signer elsewhere holds it (--online-key).
func keyFileShown(k repo.KeyInfo) string {
	if k.Role != "snapshot" && k.Role != "timestamp" && k.Role != rollout.RoleName {
		return k.File
	}
	if _, err := os.Stat(k.File); errors.Is(err, fs.ErrNotExist) {
		return "held elsewhere (KMS or HSM: --online-key)"
	}
	return k.File
}
