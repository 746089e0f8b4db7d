// Package faultfs defines the small file system interface that ferry's
// installer writes through, its real implementation (OS) and an in-memory
// implementation (Mem) that injects faults.
//
// OS is the operating system's file system. Its durable whole-file writes go
// through internal/atomicfile, its Tree confines archive extraction to one
// directory with os.Root, and its Lock is an advisory lock (flock on unix,
// LockFileEx on Windows) that a second process cannot take while the first
// holds it.
//
// Mem models a file system the way the crash-consistency literature (ALICE,
// OSDI 2014) describes the weakest POSIX guarantees: file contents become
// durable only when the file is fsynced, and directory entries (creations,
// renames, removals, links) only when their directory is fsynced. Mem can
// fail the Nth mutating operation with an error such as ENOSPC, EIO or EROFS
// (FailAt), or "lose power" at the Nth mutating operation (CrashAt): that
// operation and all later ones fail, and Reboot then drops everything that
// was never fsynced.
//
// OS is safe for concurrent use; Mem is safe for concurrent use through its
// own mutex but is meant for single-goroutine tests.
package faultfs
