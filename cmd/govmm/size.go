package main

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// parseSize reads a memory size like QEMU's -m: a whole number with an
// optional binary suffix K, M, G or T (also KiB/KB...). A bare number is in
// MiB.
func parseSize(s string) (uint64, error) {
	in := s
	s = strings.TrimSpace(s)
	up := strings.ToUpper(s)
	up = strings.TrimSuffix(strings.TrimSuffix(up, "IB"), "B")
	shift := uint(20) // MiB when no suffix
	if n := len(up); n > 0 {
		switch up[n-1] {
		case 'K':
			shift, up = 10, up[:n-1]
		case 'M':
			shift, up = 20, up[:n-1]
		case 'G':
			shift, up = 30, up[:n-1]
		case 'T':
			shift, up = 40, up[:n-1]
		}
	}
	if up == "" {
		return 0, fmt.Errorf("size %q has no number: write it like 512M or 2G", in)
	}
	n, err := strconv.ParseUint(up, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q is not a whole number with an optional K, M, G or T suffix (like 512M or 2G)", in)
	}
	if n == 0 {
		return 0, fmt.Errorf("size %q is zero", in)
	}
	if hi, _ := bits.Mul64(n, 1<<shift); hi != 0 {
		return 0, fmt.Errorf("size %q is too large", in)
	}
	return n << shift, nil
}
