package rollout

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/ferry-updates/ferry/release"
)

// Action kinds: the transitions of a release's decision.
const (
	Start   = "start"   // set the share (basis points) and make it Active
	Halt    = "halt"    // stop offering it to new installations, keep the share
	Resume  = "resume"  // offer it again at the share it had
	Pull    = "pull"    // offer it to nobody and move installations off it
	Promote = "promote" // move it to another channel, keep share and state
)

// Action is one decision the publisher makes about one release.
type Action struct {
	Kind        string // Start, Halt, Resume, Pull or Promote
	Version     string
	BasisPoints int    // Start only: the new share, 0..Full
	Channel     string // Promote: the new channel; Start: the channel of a new entry ("" = DefaultChannel)
}

// Apply makes the decision a about one release in d and returns its new
// entry. signed are the versions the application key signed (for any
// platform) and min the signed minimum safe version ("" for none): a
// version not in signed (R61) or below min (R63) is refused, so the
// publisher never signs a decision a client would ignore. On error d is
// unchanged.
//
// A release d does not name is in DefaultChannel, Active, at Full; the
// first action on it creates its entry with a fresh salt (NewSalt). Start
// sets the share and makes it Active (a pulled release too: starting it
// again is the one way back), and the channel if a names one; Halt and Resume keep the share; a pulled
// release can be neither halted nor resumed; Pull sets Pulled; Promote
// sets the channel.
func (d *Doc) Apply(a Action, signed []string, min string) (Entry, error) {
	e, err := d.next(a, signed, min)
	if err != nil {
		return Entry{}, fmt.Errorf("rollout %s %s %s: %w", a.Kind, d.App, a.Version, err)
	}
	if d.Releases == nil {
		d.Releases = map[string]Entry{}
	}
	d.Releases[a.Version] = e
	return e, nil
}

// next returns the entry a leads to, without changing d.
func (d *Doc) next(a Action, signed []string, min string) (Entry, error) {
	if err := release.ValidVersion(a.Version); err != nil {
		return Entry{}, err
	}
	if !slices.Contains(signed, a.Version) {
		return Entry{}, fmt.Errorf("the application key signed no release %s; a rollout decision can only choose among signed releases", a.Version)
	}
	if min != "" && release.CompareVersions(a.Version, min) < 0 {
		return Entry{}, fmt.Errorf("%s is below the minimum safe version %s (R63), and no installation is offered it", a.Version, min)
	}
	e, named := d.Releases[a.Version]
	if !named {
		e = Entry{Channel: DefaultChannel, BasisPoints: Full, State: Active, Salt: NewSalt()}
	}
	switch a.Kind {
	case Start:
		if a.BasisPoints < 0 || a.BasisPoints > Full {
			return Entry{}, fmt.Errorf("share of %d basis points: want 0..%d", a.BasisPoints, Full)
		}
		if a.Channel != "" {
			e.Channel = a.Channel
		}
		e.BasisPoints, e.State = a.BasisPoints, Active
	case Halt, Resume:
		if e.State == Pulled {
			return Entry{}, fmt.Errorf("%s is pulled; start it again with a share to offer it again", a.Version)
		}
		e.State = Active
		if a.Kind == Halt {
			e.State = Halted
		}
	case Pull:
		e.State = Pulled
	case Promote:
		if a.Channel == "" {
			return Entry{}, fmt.Errorf("promote needs the channel to move %s to", a.Version)
		}
		e.Channel = a.Channel
	default:
		return Entry{}, fmt.Errorf("unknown action %.20q: want one of start, halt, resume, pull, promote", a.Kind)
	}
	if err := e.Check(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// IsDefault reports whether e decides what no entry decides: a release in
// DefaultChannel, Active, at Full share. Its salt does not matter: at
// Full every installation's bucket is in.
func (e Entry) IsDefault() bool {
	return e.Channel == DefaultChannel && e.BasisPoints == Full && e.State == Active
}

// Prune removes the entries of d that no installation's choice depends on,
// and returns their versions, sorted: an entry equal to the default
// (IsDefault), and an entry of a version not among signed (the versions
// the application key signs now) that is not Pulled (Choose reads the
// entry of an unsigned version only to move installations off a pulled
// one). Without it the document only grows, one entry per release ever
// decided, until no decision fits in MaxDocLength, a halt included (F6).
// Entries of versions below the minimum safe version are kept unless
// default: a lowered minimum would make them count again.
func (d *Doc) Prune(signed []string) []string {
	var out []string
	for v, e := range d.Releases {
		if e.IsDefault() || e.State != Pulled && !slices.Contains(signed, v) {
			delete(d.Releases, v)
			out = append(out, v)
		}
	}
	slices.SortFunc(out, release.CompareVersions)
	return out
}

// NewSalt returns a fresh cohort salt: 16 bytes from crypto/rand, as 32
// lower-case hex digits.
func NewSalt() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand crashes the program instead)
	return hex.EncodeToString(b)
}

// ParsePercent parses a share given as a percentage, "5", "0.5", "12.25"
// or "100" (a trailing "%" is allowed), into basis points: at most two
// decimals, 0 to 100.
func ParsePercent(s string) (int, error) {
	in := s
	s = strings.TrimSuffix(s, "%")
	whole, frac, dot := strings.Cut(s, ".")
	ok := whole != "" && len(whole) <= 3 && len(frac) <= 2 && (!dot || frac != "")
	bp := 0
	if ok {
		for _, c := range whole + frac + strings.Repeat("0", 2-len(frac)) {
			ok = ok && '0' <= c && c <= '9'
			bp = bp*10 + int(c-'0')
		}
	}
	if !ok || bp > Full {
		return 0, fmt.Errorf("invalid percent %.20q: want 0 to 100 with at most two decimals, e.g. 5 or 0.5", in)
	}
	return bp, nil
}
