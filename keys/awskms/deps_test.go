package awskms_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientLinksNoSigner: the client library an application embeds links
// neither the AWS SDK nor crypto11 (nor the keys package that registers
// signers); only the ferry command imports them.
func TestClientLinksNoSigner(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for _, tags := range []string{"", "pkcs11"} {
		out, err := exec.Command("go", "list", "-tags", tags, "-deps", "github.com/ferry-updates/ferry/client").CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/aws/") || strings.HasPrefix(dep, "github.com/ThalesGroup/") ||
				strings.HasPrefix(dep, "github.com/ferry-updates/ferry/keys") {
				t.Errorf("client (tags %q) imports %s", tags, dep)
			}
		}
	}
}
