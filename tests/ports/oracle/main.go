// Command oracle generates inputs for the example plugins and records what
// the Go plugins would do with them, using the libraries they use:
// sigs.k8s.io/yaml for annotations (go.mod pins the version), Go's NRI API
// (github.com/containerd/nri/pkg/api v0.12.5) for the adjustments of the
// device injector's newer kinds, and go.podman.io/common/pkg/hooks v0.66.1
// for OCI hook files; and YAML documents of every shape decoded by
// sigs.k8s.io/yaml on their own, for nri::decode (decode.go).
//
// It writes one JSON object per line; tests/ports/differential.rs feeds the
// same inputs through the Rust examples and compares.
//
//	go run . -seed 1 -cases 2000 -out cases.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"

	"github.com/sirupsen/logrus"
)

// Case is one line of output.
type Case struct {
	Plugin string `json:"plugin"`
	ID     int    `json:"id"`
	// device-injector and ulimit-adjuster: pod annotations, container name.
	Annotations map[string]string `json:"annotations,omitempty"`
	Container   string            `json:"container,omitempty"`
	// What the Go plugin produced: Result, or Error set; Variants lists
	// every result Go can produce when its map iteration order decides.
	Result   json.RawMessage   `json:"result,omitempty"`
	Error    string            `json:"error,omitempty"`
	Variants []json.RawMessage `json:"variants,omitempty"`
	// device-injector: inputs Go takes that the Rust port refuses on
	// purpose (plugins.go, linuxQuirk*).
	Quirks []string `json:"quirks,omitempty"`
	// hook-injector.
	Hooks *HookCase `json:"hooks,omitempty"`
	// decode: the Go type decoded into (decode.go), the YAML text, and
	// whether the case is one of the written-out edge cases.
	Target string `json:"target,omitempty"`
	Text   string `json:"text,omitempty"`
	Edge   bool   `json:"edge,omitempty"`
}

func main() {
	seed := flag.Int64("seed", 1, "random seed")
	cases := flag.Int("cases", 2000, "cases per plugin (hook-injector gets a quarter, each with several containers)")
	out := flag.String("out", "-", "output file")
	linuxCases := flag.Int("linux-cases", -1, "device-injector cases of the NRI v0.10-v0.12 kinds (default: -cases)")
	flag.Parse()
	if *linuxCases < 0 {
		*linuxCases = *cases
	}
	logrus.SetOutput(io.Discard)

	var w io.Writer = os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)

	emit := func(c Case) {
		if err := enc.Encode(c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	counts := map[string]int{}
	// Each plugin's cases from a source of its own: seed, seed+1, seed+2.
	for k, makeCase := range []func(*rand.Rand) Case{deviceCase, ulimitCase} {
		r := rand.New(rand.NewSource(*seed + int64(k)))
		for i := 0; i < *cases; i++ {
			c := makeCase(r)
			c.ID = i
			emit(c)
			counts[c.Plugin]++
		}
	}
	r := rand.New(rand.NewSource(*seed + 2))
	tmp, err := os.MkdirTemp("", "nri-ports-hooks-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(tmp)
	queries := 0
	for i := 0; i < (*cases+3)/4; i++ {
		c, err := hookCase(r, tmp, i)
		if err != nil {
			fmt.Fprintln(os.Stderr, "hook case", i, ":", err)
			os.Exit(1)
		}
		c.ID = i
		emit(c)
		counts[c.Plugin]++
		queries += len(c.Hooks.Queries)
	}
	// The device injector's NRI v0.10-v0.12 kinds: seed+4, then the
	// written-out edge cases.
	r = rand.New(rand.NewSource(*seed + 4))
	for i := 0; i < *linuxCases; i++ {
		c := linuxCase(r)
		c.ID = i
		emit(c)
	}
	linuxEdgeCount := linuxEdges(emit)
	edges := decodeEdges(func(c Case) {
		c.Edge = true
		emit(c)
	})
	r = rand.New(rand.NewSource(*seed + 3))
	for i := 0; i < *cases; i++ {
		c := decodeCase(r)
		c.ID = i
		emit(c)
	}
	samples(*seed+10, *cases, emit)
	fmt.Fprintf(os.Stderr, "oracle: seed %d: %d device-injector (+%d of the NRI v0.10-v0.12 kinds, +%d written out), %d ulimit-adjuster, %d hook-injector cases (%d containers), %d decode cases (%d written out)\n",
		*seed, counts["device-injector"], *linuxCases, linuxEdgeCount, counts["ulimit-adjuster"], counts["hook-injector"], queries, edges+*cases, edges)
}
