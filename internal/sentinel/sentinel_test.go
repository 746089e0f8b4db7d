package sentinel_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/install"
	"github.com/ferry-updates/ferry/internal/sentinel"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/trust"
)

// Each condition has one sentinel value, whichever package a caller names
// it by: an error wrapped by one package matches the sentinel of every
// other, and no two conditions match each other.
func TestOneSentinelEach(t *testing.T) {
	conds := []struct {
		name string
		one  error
		all  []error
	}{
		{"not found", sentinel.ErrNotFound, []error{fetch.ErrNotFound, trust.ErrNotFound}},
		{"too large", sentinel.ErrTooLarge, []error{fetch.ErrTooLarge, trust.ErrTooLarge}},
		{"busy", sentinel.ErrBusy, []error{install.ErrBusy, repo.ErrBusy, client.ErrBusy}},
		{"refused", sentinel.ErrRefused, []error{fetch.ErrRefused, client.ErrRefused, repo.ErrRefused}},
	}
	for _, c := range conds {
		for _, a := range c.all {
			err := fmt.Errorf("somewhere: %w", a)
			for _, b := range c.all {
				if !errors.Is(err, b) {
					t.Errorf("%s: %v does not match %v", c.name, err, b)
				}
			}
			for _, d := range conds {
				if d.name != c.name && errors.Is(err, d.one) {
					t.Errorf("%s matches %s", c.name, d.name)
				}
			}
		}
	}
	// A 404 from fetch is trust's "not found" (the end of the root chain).
	if err := fmt.Errorf("fetch x: %w", &fetch.StatusError{Code: 404}); !errors.Is(err, trust.ErrNotFound) {
		t.Errorf("a 404 does not match trust.ErrNotFound")
	}
}
