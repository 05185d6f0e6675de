package main

import (
	"strconv"
	"strings"
)

// parseVersion reads "vX.Y.Z" (a pre-release or build suffix is ignored).
func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	s, ok := strings.CutPrefix(v, "v")
	if !ok {
		return out, false
	}
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// atLeast reports whether version v is min or newer; an unreadable v is
// older than anything.
func atLeast(v, min string) bool {
	a, ok := parseVersion(v)
	if !ok {
		return false
	}
	b, _ := parseVersion(min)
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}
