package repo

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/trust"
)

// A proposal file holds a change to root or to targets while its holders
// sign it, one by one, each with only their own key (see docs/keys.md for
// the format). Its "signed" member is the new role's signed part in
// canonical JSON, exactly the bytes every signature covers and exactly what
// publish writes into the metadata file clients verify.

const (
	proposalFormat = 1
	// MaxProposalSize bounds a proposal file (a root with 16 keys and a few
	// signatures is about 8 KB; targets with a few hundred delegations
	// about 200 KB).
	MaxProposalSize = 1 << 20
	maxSignatures   = 64
	maxRequireKeys  = 64
	maxSigHex       = 1024 // an ECDSA or Ed25519 signature is far shorter
)

var (
	hexIDRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hexSigRE = regexp.MustCompile(`^[0-9a-f]+$`)
)

// Proposal is a change to the root or targets role awaiting signatures.
type Proposal struct {
	// Role is "root" or "targets".
	Role string
	// Base is the version of Role the change applies to, and the SHA-256 of
	// that version's metadata file: publish refuses a proposal whose base is
	// no longer the repository's current one.
	Base Base
	// Requires says whose signatures publish will count: for root, the
	// current root's keys and threshold and the new root's; for targets,
	// root's targets keys. It tells holders what is needed; publish
	// recomputes it from the repository and never trusts this copy.
	Requires []Requirement
	// Signed is the new role's signed part in canonical JSON.
	Signed json.RawMessage
	// Signatures are the signatures collected so far, over Signed.
	Signatures []metadata.Signature
}

// Base identifies the role version a proposal changes.
type Base struct {
	Version int64  `json:"version"`
	SHA256  string `json:"sha256"`
}

// Requirement is one threshold a proposal must meet.
type Requirement struct {
	Name      string                   `json:"name"`
	Threshold int                      `json:"threshold"`
	KeyIDs    []string                 `json:"keyids"`
	Keys      map[string]*metadata.Key `json:"keys"`
}

// proposalJSON is the file format, member for member.
type proposalJSON struct {
	Format     int             `json:"ferry_proposal"`
	Role       string          `json:"role"`
	Base       Base            `json:"base"`
	Requires   []Requirement   `json:"requires"`
	Signed     json.RawMessage `json:"signed"`
	Signatures []sigJSON       `json:"signatures"`
}

type sigJSON struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// ErrBadProposal is wrapped by every ParseProposal error.
var ErrBadProposal = errors.New("invalid proposal")

// ParseProposal parses and checks a proposal file. It accepts exactly what
// Marshal writes: the current format, known members only, no duplicate
// members, a "signed" part already in canonical JSON that decodes as the
// named role with a version one above the base's. It does not check
// signatures (publish counts them) or that the base is current.
func ParseProposal(data []byte) (*Proposal, error) {
	p, err := parseProposal(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadProposal, err)
	}
	return p, nil
}

func parseProposal(data []byte) (*Proposal, error) {
	if len(data) > MaxProposalSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxProposalSize)
	}
	if err := noDuplicateMembers(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f proposalJSON
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the proposal")
	}
	if f.Format != proposalFormat {
		return nil, fmt.Errorf("ferry_proposal %d, want %d", f.Format, proposalFormat)
	}
	p := &Proposal{Role: f.Role, Base: f.Base, Requires: f.Requires}
	if err := p.checkHeader(); err != nil {
		return nil, err
	}
	signed, err := checkSigned(p.Role, p.Base.Version, f.Signed)
	if err != nil {
		return nil, err
	}
	p.Signed = signed
	if len(f.Signatures) > maxSignatures {
		return nil, fmt.Errorf("%d signatures, at most %d", len(f.Signatures), maxSignatures)
	}
	for _, s := range f.Signatures {
		if !hexIDRE.MatchString(s.KeyID) || len(s.Sig) > maxSigHex || len(s.Sig)%2 != 0 || !hexSigRE.MatchString(s.Sig) {
			return nil, fmt.Errorf("malformed signature by %.70q", s.KeyID)
		}
		sig, _ := hex.DecodeString(s.Sig)
		p.Signatures = append(p.Signatures, metadata.Signature{KeyID: s.KeyID, Signature: sig})
	}
	return p, nil
}

func (p *Proposal) checkHeader() error {
	if p.Role != metadata.ROOT && p.Role != metadata.TARGETS {
		return fmt.Errorf("role %.40q, want root or targets", p.Role)
	}
	first := p.Role == metadata.ROOT && p.Base == genesisBase() // a repository's first root (Init with holders' keys)
	if !first && p.Base.Version < 1 || !hexIDRE.MatchString(p.Base.SHA256) {
		return errors.New("base needs a version >= 1 (0 for a first root) and a lowercase hex sha256")
	}
	if n := len(p.Requires); n < 1 || n > 2 {
		return fmt.Errorf("%d requirements, want 1 or 2", n)
	}
	for _, rq := range p.Requires {
		if rq.Name == "" || len(rq.Name) > 64 {
			return errors.New("requirement without a name (or a name over 64 bytes)")
		}
		if rq.Threshold < 1 || rq.Threshold > len(rq.KeyIDs) || len(rq.KeyIDs) > maxRequireKeys || len(rq.Keys) != len(rq.KeyIDs) {
			return fmt.Errorf("requirement %q: threshold %d of %d key ids and %d keys", rq.Name, rq.Threshold, len(rq.KeyIDs), len(rq.Keys))
		}
		for _, id := range rq.KeyIDs {
			k, ok := rq.Keys[id]
			if !hexIDRE.MatchString(id) || !ok || k == nil {
				return fmt.Errorf("requirement %q: key id %.70q has no key", rq.Name, id)
			}
			if got, err := k.ID(); err != nil || got != id {
				return fmt.Errorf("requirement %q: key listed as %.16s is key %.16s", rq.Name, id, got)
			}
		}
	}
	return nil
}

// checkSigned decodes signed, the "signed" member as it is in the file,
// as role, checks that it is the JSON text of its canonical form (see
// jsonText) one version above base, and returns the canonical bytes.
func checkSigned(role string, base int64, signed json.RawMessage) (_ []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("signed: malformed metadata: %v", r)
		}
	}()
	var canon []byte
	var version int64
	switch role {
	case metadata.ROOT:
		md, err := metadata.Root().FromBytes(envelopeText(signed, nil))
		if err != nil {
			return nil, fmt.Errorf("signed: %w", err)
		}
		version = md.Signed.Version
		if err := trust.CheckKeyIDs(role, md.Signed.Keys); err != nil {
			return nil, fmt.Errorf("signed: %w", err)
		}
		canon, err = cjson.EncodeCanonical(md.Signed)
		if err != nil {
			return nil, err
		}
	default:
		md, err := metadata.Targets().FromBytes(envelopeText(signed, nil))
		if err != nil {
			return nil, fmt.Errorf("signed: %w", err)
		}
		version = md.Signed.Version
		if d := md.Signed.Delegations; d != nil {
			if err := trust.CheckKeyIDs(role, d.Keys); err != nil {
				return nil, fmt.Errorf("signed: %w", err)
			}
		}
		if err := checkDelegations(md.Signed.Delegations); err != nil {
			return nil, fmt.Errorf("signed: %w", err)
		}
		canon, err = cjson.EncodeCanonical(md.Signed)
		if err != nil {
			return nil, err
		}
	}
	if !bytes.Equal(jsonText(canon), signed) {
		return nil, errors.New("signed: not in canonical JSON form")
	}
	if version != base+1 {
		return nil, fmt.Errorf("signed: version %d, want base %d + 1", version, base)
	}
	return canon, nil
}

// Marshal returns the proposal file: indented JSON with the signed part
// kept on one line, as it is signed.
func (p *Proposal) Marshal() ([]byte, error) {
	f := proposalJSON{Format: proposalFormat, Role: p.Role, Base: p.Base, Requires: p.Requires, Signed: jsonText(p.Signed), Signatures: []sigJSON{}}
	for _, s := range p.Signatures {
		f.Signatures = append(f.Signatures, sigJSON{KeyID: s.KeyID, Sig: hex.EncodeToString(s.Signature)})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	// The encoder re-indents the raw signed part; put the canonical bytes
	// back so the file shows exactly what is signed.
	out, err := reinsertSigned(b.Bytes(), p.Signed)
	if err != nil {
		return nil, err
	}
	if len(out) > MaxProposalSize {
		return nil, fmt.Errorf("proposal of %d bytes is larger than %d", len(out), MaxProposalSize)
	}
	return out, nil
}

// reinsertSigned replaces the indented "signed" member of an encoded
// proposal by its canonical one-line form.
func reinsertSigned(enc []byte, signed []byte) ([]byte, error) {
	at := bytes.Index(enc, []byte("\n  \"signed\": "))
	end := bytes.Index(enc, []byte(",\n  \"signatures\": "))
	if at < 0 || end < at {
		return nil, errors.New("marshal proposal: unexpected encoding")
	}
	var out bytes.Buffer
	out.Write(enc[:at])
	out.WriteString("\n  \"signed\": ")
	out.Write(jsonText(signed))
	out.Write(enc[end:])
	return out.Bytes(), nil
}

// ReadProposal reads and parses the proposal file at path.
func ReadProposal(path string) (*Proposal, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read proposal: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxProposalSize+1))
	if err != nil {
		return nil, fmt.Errorf("read proposal %s: %w", path, err)
	}
	p, err := ParseProposal(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// WriteProposal writes p to path atomically.
func WriteProposal(path string, p *Proposal) error {
	data, err := p.Marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write proposal: %w", err)
	}
	return nil
}

// ErrNotRequired means a key is not one of the keys a proposal needs.
var ErrNotRequired = errors.New("key is not needed by this proposal")

// Sign adds s's signature over the signed part. A key that is in none of
// the requirements is refused with ErrNotRequired (its signature would not
// count); a key that signed before has its signature replaced, so signing
// twice leaves one signature.
func (p *Proposal) Sign(ctx context.Context, s keys.Signer) error {
	id, err := s.Key().ID()
	if err != nil {
		return err
	}
	if !p.requires(id) {
		return fmt.Errorf("key %s: %w (it needs %s)", id, ErrNotRequired, p.describeRequires())
	}
	if err := p.checkKeys(); err != nil {
		return fmt.Errorf("sign proposal: %w", err)
	}
	sig, err := s.Sign(ctx, p.Signed)
	if err != nil {
		return fmt.Errorf("sign proposal with key %s: %w", id, err)
	}
	p.Signatures = slices.DeleteFunc(p.Signatures, func(x metadata.Signature) bool { return x.KeyID == id })
	p.Signatures = append(p.Signatures, metadata.Signature{KeyID: id, Signature: sig})
	return nil
}

// checkKeys refuses p if its signed part lists a key under an ID that is
// not the key's own, as clients refuse such a root or targets role.
func (p *Proposal) checkKeys() error {
	env := envelope(p.Signed, nil)
	var ks []map[string]*metadata.Key
	if p.Role == metadata.ROOT {
		md, err := metadata.Root().FromBytes(env)
		if err != nil {
			return fmt.Errorf("%w: signed: %v", ErrBadProposal, err)
		}
		ks = append(ks, md.Signed.Keys)
	} else {
		md, err := metadata.Targets().FromBytes(env)
		if err != nil {
			return fmt.Errorf("%w: signed: %v", ErrBadProposal, err)
		}
		if d := md.Signed.Delegations; d != nil {
			ks = append(ks, d.Keys)
		}
		if err := checkDelegations(md.Signed.Delegations); err != nil {
			return fmt.Errorf("%w: signed: %w", ErrBadProposal, err)
		}
	}
	for _, k := range ks {
		if err := trust.CheckKeyIDs(p.Role, k); err != nil {
			return fmt.Errorf("%w: signed: %w", ErrBadProposal, err)
		}
	}
	return nil
}

func (p *Proposal) requires(id string) bool {
	for _, rq := range p.Requires {
		if slices.Contains(rq.KeyIDs, id) {
			return true
		}
	}
	return false
}

func (p *Proposal) describeRequires() string {
	var b bytes.Buffer
	for i, rq := range p.Requires {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%d of %s: %v", rq.Threshold, rq.Name, shortIDs(rq.KeyIDs))
	}
	return b.String()
}

// Metadata returns the TUF metadata file the proposal stands for: the
// signed part and the signatures collected so far.
func (p *Proposal) Metadata() []byte {
	return envelope(p.Signed, p.Signatures)
}

// envelope builds {"signatures":[...],"signed":SIGNED} around the
// canonical signed bytes, written as JSON text (jsonText) and otherwise not
// re-encoded.
func envelope(signed []byte, sigs []metadata.Signature) []byte {
	return envelopeText(jsonText(signed), sigs)
}

// jsonText returns canonical JSON as JSON text. Canonical JSON (the form
// TUF signs) escapes only backslash and quote in strings, so a string may
// hold raw control characters, which JSON text forbids: the PEM public
// value of an ECDSA key has newlines. Outside strings canonical JSON has
// no whitespace and no control characters, so escaping every byte below
// 0x20 changes only strings, and the text decodes to the same values (and
// so to the same canonical bytes). Without such bytes the result is the
// input unchanged.
func jsonText(canon []byte) []byte {
	if !bytes.ContainsFunc(canon, func(r rune) bool { return r < 0x20 }) {
		return canon
	}
	var b bytes.Buffer
	for _, c := range canon {
		switch {
		case c == '\n':
			b.WriteString(`\n`)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.Bytes()
}

// envelopeText is envelope around a signed part that is JSON text already.
func envelopeText(signed []byte, sigs []metadata.Signature) []byte {
	var b bytes.Buffer
	b.WriteString(`{"signatures":[`)
	for i, s := range sigs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"keyid":%q,"sig":%q}`, s.KeyID, hex.EncodeToString(s.Signature))
	}
	b.WriteString(`],"signed":`)
	b.Write(signed)
	b.WriteByte('}')
	return b.Bytes()
}

func shortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id
		if len(id) > 16 {
			out[i] = id[:16]
		}
	}
	return out
}

// noDuplicateMembers refuses JSON in which an object names a member twice
// (encoding/json would silently keep the last one).
func noDuplicateMembers(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return uniqueValue(dec, 0)
}

func uniqueValue(dec *json.Decoder, depth int) error {
	if depth > 64 {
		return errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			name, _ := k.(string)
			if seen[name] {
				return fmt.Errorf("member %.40q appears twice", name)
			}
			seen[name] = true
			if err := uniqueValue(dec, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
	case json.Delim('['):
		for dec.More() {
			if err := uniqueValue(dec, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
	}
	return err
}

// Status counts the signatures collected so far against the proposal's own
// requirements. It informs holders; publish counts against the repository.
func (p *Proposal) Status() []NamedTally {
	var out []NamedTally
	for _, rq := range p.Requires {
		t, err := trust.CountSignatures(p.Metadata(), rq.Keys, rq.KeyIDs, rq.Threshold)
		if err != nil {
			t = trust.Tally{Threshold: rq.Threshold, Missing: rq.KeyIDs}
		}
		out = append(out, NamedTally{Name: rq.Name, Tally: t})
	}
	return out
}

// Summary describes, one line each, what the signed part says: the new
// version and expiry, and the keys and threshold of every role it defines
// (for targets also each delegation's paths and terminating flag). Holders
// read it before they sign.
func (p *Proposal) Summary() []string {
	env := envelope(p.Signed, nil)
	var lines []string
	role := func(name string, threshold int, ids []string) {
		lines = append(lines, fmt.Sprintf("  %-10s %d of %d keys: %s", name, threshold, len(ids), strings.Join(shortIDs(ids), " ")))
	}
	if p.Role == metadata.ROOT {
		md, err := metadata.Root().FromBytes(env)
		if err != nil {
			return []string{"  (unreadable: " + err.Error() + ")"}
		}
		lines = append(lines, fmt.Sprintf("root version %d, expires %s", md.Signed.Version, md.Signed.Expires.Format(time.RFC3339)))
		for _, name := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
			if r := md.Signed.Roles[name]; r != nil {
				role(name, r.Threshold, r.KeyIDs)
			}
		}
		return lines
	}
	md, err := metadata.Targets().FromBytes(env)
	if err != nil {
		return []string{"  (unreadable: " + err.Error() + ")"}
	}
	lines = append(lines, fmt.Sprintf("targets version %d, expires %s", md.Signed.Version, md.Signed.Expires.Format(time.RFC3339)))
	if d := md.Signed.Delegations; d != nil {
		for _, r := range d.Roles {
			lines = append(lines, delegationLine(r))
		}
		if d.SuccinctRoles != nil {
			lines = append(lines, "  succinct roles (ferry never writes them)")
		}
	}
	return lines
}
