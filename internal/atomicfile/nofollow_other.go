//go:build !unix

package atomicfile

// noFollow is 0 without O_NOFOLLOW: O_EXCL alone refuses any existing name.
const noFollow = 0
