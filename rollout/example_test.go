package rollout_test

import (
	"fmt"

	"github.com/ferry-updates/ferry/rollout"
)

// A publisher starts 1.4.2 in beta at 5%; an installation asks what to
// install. Whether it is in the cohort depends on its bucket.
func Example() {
	signed := []string{"1.4.1", "1.4.2"} // the versions the application key signed
	d := &rollout.Doc{App: "hello"}
	bp, _ := rollout.ParsePercent("5")
	e, err := d.Apply(rollout.Action{Kind: rollout.Start, Version: "1.4.2", BasisPoints: bp, Channel: "beta"}, signed, "")
	if err != nil {
		panic(err)
	}
	id := "0123456789abcdef0123456789abcdef" // this installation's install ID
	c := rollout.Choose(rollout.Input{Versions: signed, Doc: d,
		Installation: rollout.Installation{ID: id, Channel: "beta", Installed: "1.4.1"}})
	fmt.Println(rollout.Percent(e.BasisPoints), e.State, e.Channel)
	fmt.Println(c.Version == "1.4.2" == (rollout.Bucket(id, e.Salt) < e.BasisPoints))

	// Pulled, 1.4.2 moves its installations back to 1.4.1.
	d.Apply(rollout.Action{Kind: rollout.Pull, Version: "1.4.2"}, signed, "")
	c = rollout.Choose(rollout.Input{Versions: signed, Doc: d,
		Installation: rollout.Installation{ID: id, Channel: "beta", Installed: "1.4.2"}})
	fmt.Println(c.Version, c.Downgrade, c.Reason)
	// Output:
	// 5% active beta
	// true
	// 1.4.1 true installed version pulled
}
