package event

import "slices"

// kinds are every kind this package defines, in the order they are
// declared (TestKindsComplete checks the list against the declarations).
var kinds = []Kind{
	CheckStarted, CheckUpToDate, CheckOffered, CheckFailed, MirrorFailed,
	MetadataRejected, MetadataCacheIgnore, MetadataCacheReload, MetadataRecovered, DelegationLimit,
	ReleaseRefused, ReleaseMixed, FileIgnored,
	DownloadStarted, DownloadDone, DownloadRejected, CacheRejected, StagingRefused,
	InstallStarted, InstallDone, InstallUnchanged, HealthPassed, HealthFailed, RolledBack, RollbackFailed,
	Recovered, InstallRejected, InstallFailed, Adopted, Swapped, NotOnDisk, StateCorrupt, StateLost,
	Pulled, BelowMin, MinLowered, Stale, Refreshed,
	InstallDeferred, AgentStarted, AgentStopping, AgentReexec,
}

// Kinds returns every kind there is, for a command that checks a kind a
// person typed (ferry audit show --kind).
func Kinds() []Kind { return slices.Clone(kinds) }
