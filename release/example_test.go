package release_test

import (
	"fmt"

	"github.com/ferry-updates/ferry/release"
)

func Example() {
	p, err := release.ParsePath("hello/1.4.2/linux-amd64/hello")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.App, p.Version, p.Platform, p.File)

	// The signed custom metadata a publisher attaches to that target.
	c := release.Custom{App: p.App, Version: p.Version, Platform: p.Platform, Kind: release.InferKind(p.File)}
	b, _ := c.Marshal()
	fmt.Println(string(b))

	// A reader checks the signed metadata and that it agrees with the path.
	got, err := release.ParseCustom(b)
	fmt.Println(err, got.Matches(p))

	// One version grammar everywhere: strict semver, no "v", no +build.
	for _, v := range []string{"1.4.2", "2.0.0-rc.1", "v1", "1.0", "1.1.0+rebuild"} {
		fmt.Println(v, release.ValidVersion(v) == nil)
	}
	fmt.Println(release.CompareVersions("1.10.0", "1.9.0"))
	// Output:
	// hello 1.4.2 linux/amd64 hello
	// {"ferry":{"app":"hello","version":"1.4.2","platform":"linux/amd64","kind":"binary"}}
	// <nil> <nil>
	// 1.4.2 true
	// 2.0.0-rc.1 true
	// v1 false
	// 1.0 false
	// 1.1.0+rebuild false
	// 1
}
