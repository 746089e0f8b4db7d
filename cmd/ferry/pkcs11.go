//go:build pkcs11

package main

import "github.com/ferry-updates/ferry/keys/pkcs11"

// With -tags pkcs11 (cgo), the command opens pkcs11: references and
// ferry key generate --pkcs11 creates keys in a token.
func init() { generatePKCS11 = pkcs11.Generate }
