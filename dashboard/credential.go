package dashboard

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// A credential is the dashboard's admin password, hashed with argon2id
// (RFC 9106) into one PHC-style line, the only form in which it is stored:
//
//	$argon2id$v=19$m=65536,t=3,p=1$SALT$HASH
//
// m is the memory in KiB, t the passes, p the lanes; SALT (16 bytes) and
// HASH (32 bytes) are unpadded standard base64. ferry dashboard credential
// writes it; ferry serve --dashboard-credential reads it.

// The parameters of a new credential: RFC 9106's second recommended option
// (64 MiB, three passes), one lane because the server verifies one sign-in
// at a time per core.
const (
	DefaultMemory = 64 << 10 // KiB
	DefaultTime   = 3
	DefaultLanes  = 1
	saltLen       = 16
	hashLen       = 32
	// MinPassword is the shortest password HashPassword accepts.
	MinPassword = 12
)

// Bounds of what ParseCredential accepts, so a credential file cannot make
// each sign-in take gigabytes or minutes.
const (
	maxMemory = 1 << 20 // KiB: 1 GiB
	maxTime   = 16
	maxLanes  = 16
)

// Credential is a parsed argon2id credential.
type Credential struct {
	Memory uint32 // KiB
	Time   uint32
	Lanes  uint8
	Salt   []byte
	Hash   []byte
}

// Params are the argon2id cost parameters of a new credential.
type Params struct {
	Memory uint32 // KiB
	Time   uint32
	Lanes  uint8
}

// DefaultParams are the parameters ferry dashboard credential uses.
var DefaultParams = Params{Memory: DefaultMemory, Time: DefaultTime, Lanes: DefaultLanes}

// HashPassword returns a new credential for password with a fresh random
// salt. The password must have at least MinPassword characters.
func HashPassword(password []byte, p Params) (Credential, error) {
	if n := utf8.RuneCount(password); n < MinPassword {
		return Credential{}, fmt.Errorf("the dashboard password has %d characters: use at least %d (a few random words)", n, MinPassword)
	}
	if err := p.check(); err != nil {
		return Credential{}, err
	}
	salt := make([]byte, saltLen)
	rand.Read(salt) // never fails (crypto/rand crashes the program instead)
	return Credential{Memory: p.Memory, Time: p.Time, Lanes: p.Lanes, Salt: salt,
		Hash: argon2.IDKey(password, salt, p.Time, p.Memory, p.Lanes, hashLen)}, nil
}

func (p Params) check() error {
	if p.Memory < 8*uint32(p.Lanes) || p.Memory > maxMemory || p.Time < 1 || p.Time > maxTime || p.Lanes < 1 || p.Lanes > maxLanes {
		return fmt.Errorf("argon2id parameters m=%d,t=%d,p=%d: want m from 8*p to %d KiB, t from 1 to %d, p from 1 to %d",
			p.Memory, p.Time, p.Lanes, maxMemory, maxTime, maxLanes)
	}
	return nil
}

// Verify reports whether password is the one c was made from. The hashes
// are compared in constant time.
func (c Credential) Verify(password []byte) bool {
	if len(c.Hash) == 0 {
		return false
	}
	got := argon2.IDKey(password, c.Salt, c.Time, c.Memory, c.Lanes, uint32(len(c.Hash)))
	return subtle.ConstantTimeCompare(got, c.Hash) == 1
}

// String is the credential's PHC-style line (without a newline).
func (c Credential) String() string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, c.Memory, c.Time, c.Lanes,
		enc.EncodeToString(c.Salt), enc.EncodeToString(c.Hash))
}

var errCredential = errors.New("not a dashboard credential: want one line $argon2id$v=19$m=...,t=...,p=...$SALT$HASH, as ferry dashboard credential writes")

// ParseCredential reads a credential line (surrounding white space is
// ignored). It refuses anything else than argon2id version 19 with
// parameters within bounds written without leading zeros, a salt of at
// least 8 bytes and a hash of 16 to 64, in canonical unpadded base64: a
// credential has one text form.
func ParseCredential(b []byte) (Credential, error) {
	s := string(bytes.TrimSpace(b))
	// One line of printable ASCII: base64 decoding would skip a CR or LF
	// inside, so the same credential could be written many ways.
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return Credential{}, errCredential
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Credential{}, errCredential
	}
	var c Credential
	var p Params
	for i, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || v != strconv.FormatUint(n, 10) || k != [...]string{"m", "t", "p"}[min(i, 2)] || i > 2 {
			return Credential{}, errCredential
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > maxLanes {
				return Credential{}, fmt.Errorf("dashboard credential: %w", Params{Lanes: maxLanes + 1}.check())
			}
			p.Lanes = uint8(n)
		}
	}
	if err := p.check(); err != nil {
		return Credential{}, fmt.Errorf("dashboard credential: %w", err)
	}
	enc := base64.RawStdEncoding.Strict()
	salt, err1 := enc.DecodeString(parts[4])
	hash, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(hash) < 16 || len(hash) > 64 {
		return Credential{}, errCredential
	}
	c.Memory, c.Time, c.Lanes, c.Salt, c.Hash = p.Memory, p.Time, p.Lanes, salt, hash
	return c, nil
}
