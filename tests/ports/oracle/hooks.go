package main

import "math/rand"

type HookCase struct {
	Queries []int `json:"queries"`
}

func hookCase(r *rand.Rand, tmp string, i int) (Case, error) {
	return Case{Plugin: "hook-injector", Hooks: &HookCase{}}, nil
}
