// Command ferry publishes, serves and installs signed software updates.
package main

import (
	_ "filippo.io/age"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/spf13/cobra"
	_ "github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	_ "github.com/theupdateframework/go-tuf/v2/metadata/updater"
	_ "github.com/sigstore/sigstore/pkg/signature"
	_ "golang.org/x/mod/semver"
	_ "golang.org/x/term"
)

func main() {}
