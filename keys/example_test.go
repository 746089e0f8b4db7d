package keys_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferry-updates/ferry/keys"
)

func Example() {
	dir, _ := os.MkdirTemp("", "keys-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keys", "targets.age")

	priv, _ := keys.Generate()
	// Tests may lower the work factor; 0 means keys.DefaultWorkFactor.
	if err := keys.Save(path, priv, []byte("passphrase"), 10); err != nil {
		fmt.Println(err)
		return
	}
	_, err := keys.Load(path, []byte("not the passphrase"))
	fmt.Println(errors.Is(err, keys.ErrWrongPassphrase))

	loaded, _ := keys.Load(path, []byte("passphrase"))
	k, _ := keys.TUFKey(loaded.Public().(ed25519.PublicKey))
	fmt.Println(k.Type, k.Scheme)
	// Output:
	// true
	// ed25519 ed25519
}
