// Package harness is the shared machinery of ferry's benchmark programs
// (bench/refresh, bench/download): it re-executes the running program as a
// child process for each measured case, measures time, allocations and peak
// resident memory inside the child, serves a directory over real HTTPS on
// 127.0.0.1 while counting the bytes served, and prints markdown tables.
//
// Peak RSS is the child's own VmHWM from /proc/self/status (Linux), reset
// through /proc/self/clear_refs at the start of each measured step. The
// rusage Maxrss of a child (os.ProcessState.SysUsage) is also recorded, but
// on Linux it is polluted by the parent: Go starts children with
// CLONE_VM|CLONE_VFORK, so at exec the kernel folds the parent's high-water
// RSS into the child's maxrss (a child of a 300 MB parent reports 300 MB
// while its own VmHWM is 2 MB).
//
// Nothing here is safe for concurrent use; benchmarks run one case at a time.
package harness
