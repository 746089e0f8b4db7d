package main

// The signer schemes the command can open by reference, besides key files
// (see keys.Open and docs/signers.md). They are imported here, not by the
// libraries, so that an application embedding the client links none of
// them; PKCS#11 is added by pkcs11.go in builds with -tags pkcs11.
import _ "github.com/ferry-updates/ferry/keys/awskms"
