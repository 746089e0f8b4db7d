package server

import "github.com/ferry-updates/ferry/event"

// knownKinds are the kinds of package event, each a value of the "kind"
// label of ferry_events_total (TestKnownKindsComplete_Metrics checks the
// list against event/event.go). A kind not listed is counted as "other":
// kinds come from clients, and must not create label values.
var knownKinds = []event.Kind{
	event.CheckStarted, event.CheckUpToDate, event.CheckOffered, event.CheckFailed, event.MirrorFailed,
	event.MetadataRejected, event.MetadataCacheIgnore, event.MetadataCacheReload, event.MetadataRecovered, event.DelegationLimit,
	event.ReleaseRefused, event.ReleaseMixed, event.FileIgnored,
	event.DownloadStarted, event.DownloadDone, event.DownloadRejected, event.CacheRejected, event.StagingRefused,
	event.InstallStarted, event.InstallDone, event.InstallUnchanged, event.HealthPassed, event.HealthFailed,
	event.RolledBack, event.RollbackFailed, event.Recovered, event.InstallRejected, event.InstallFailed,
	event.Adopted, event.Swapped, event.NotOnDisk, event.StateCorrupt, event.StateLost,
	event.Pulled, event.BelowMin, event.MinLowered, event.Stale, event.Refreshed,
	event.InstallDeferred, event.AgentStarted, event.AgentStopping, event.AgentReexec,
}
