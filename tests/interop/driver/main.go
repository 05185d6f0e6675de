// Command driver is the runtime side of the NRI interop harness: it embeds the
// reference Go runtime adaptation (github.com/containerd/nri v0.9.0
// pkg/adaptation), drives plugins that implement the interop plugin contract
// through their lifecycle, and checks what the adaptation hands back.
//
// Usage: driver -plugin PATH [-plugin2 PATH] [-run REGEX] [-deadline-guard] [-v]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
)

type scenario struct {
	name string
	fn   func(*H) error
}

type options struct {
	deadlineGuard bool
}

var opts options

// Every scenario must finish within this bound (each wait inside is bounded
// far below it; this only catches a hung adaptation call).
const scenarioTimeout = 40 * time.Second

func main() {
	var (
		plugin  = flag.String("plugin", "", "plugin binary implementing the interop contract (required)")
		plugin2 = flag.String("plugin2", "", "optional second contract plugin (B in two-plugins-ordering)")
		run     = flag.String("run", "", "regexp selecting scenarios by name")
		verbose = flag.Bool("v", false, "verbose: stream the adaptation log, keep temp dirs, dump plugin output on failure")
	)
	flag.BoolVar(&opts.deadlineGuard, "deadline-guard", false,
		"slow-handler-dropped passes -deadline-guard to the -plugin and expects it to answer before the runtime's deadline and stay registered")
	flag.Parse()

	if *plugin == "" {
		fmt.Fprintln(os.Stderr, "driver: -plugin PATH is required")
		flag.Usage()
		os.Exit(2)
	}
	for _, p := range []*string{plugin, plugin2} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err == nil {
			*p = abs
		}
		if st, err := os.Stat(*p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			fmt.Fprintf(os.Stderr, "driver: %s is not an executable file\n", *p)
			os.Exit(2)
		}
	}
	var filter *regexp.Regexp
	if *run != "" {
		var err error
		if filter, err = regexp.Compile(*run); err != nil {
			fmt.Fprintf(os.Stderr, "driver: bad -run: %v\n", err)
			os.Exit(2)
		}
	}

	installLoggers(*verbose)

	passed, failed := 0, 0
	for _, sc := range scenarios {
		if filter != nil && !filter.MatchString(sc.name) {
			continue
		}
		start := time.Now()
		err := runScenario(sc, *plugin, *plugin2, *verbose)
		d := time.Since(start).Round(time.Millisecond)
		if err != nil {
			failed++
			fmt.Printf("FAIL %s: %v\n", sc.name, err)
		} else {
			passed++
			fmt.Printf("PASS %s (%v)\n", sc.name, d)
		}
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 || passed == 0 {
		os.Exit(1)
	}
}

func runScenario(sc scenario, plugin, plugin2 string, verbose bool) (err error) {
	// global adaptation settings back to upstream defaults
	adaptation.SetPluginRegistrationTimeout(adaptation.DefaultPluginRegistrationTimeout)
	adaptation.SetPluginRequestTimeout(adaptation.DefaultPluginRequestTimeout)

	if verbose {
		fmt.Fprintf(os.Stderr, "=== %s\n", sc.name)
	}
	h, err := newH(sc.name, plugin, plugin2, verbose)
	if err != nil {
		return err
	}
	defer h.teardown()

	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v", r)
			}
		}()
		done <- sc.fn(h)
	}()
	select {
	case err = <-done:
	case <-time.After(scenarioTimeout):
		err = fmt.Errorf("scenario did not finish within %v", scenarioTimeout)
	}

	if err == nil && !h.allowDrops {
		// let a plugin that dies right after its last reply show in the log
		time.Sleep(50 * time.Millisecond)
		if l, bad := unexpectedLogLine(logs.since(h.logStart)); bad {
			err = fmt.Errorf("unexpected adaptation log line: %s %s", l.level, trunc(l.msg, 300))
		}
	}
	if err != nil && verbose {
		h.dumpOutputs()
	}
	return err
}
