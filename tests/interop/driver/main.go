// Command driver is the runtime side of the NRI interop harness: it embeds the
// reference Go runtime adaptation (github.com/containerd/nri pkg/adaptation
// of the version selected at build time: v0.9.0 by default, or v0.10.0,
// v0.11.0, v0.12.3, v0.12.4, v0.12.5 with the build tags nri_v0_10,
// nri_v0_11, nri_v0_12_3, nri_v0_12_4, nri_v0_12_5 and the matching
// -modfile), drives plugins that implement the interop
// plugin contract through their lifecycle, and checks what the adaptation
// hands back.
//
// Usage: driver -plugin PATH [-plugin2 PATH] [-plugin-nri V] [-plugin2-nri V]
//
//	[-legacy-plugin PATH] [-require-events] [-run REGEX] [-deadline-guard] [-v]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
)

type scenario struct {
	name string
	fn   func(*H) error
}

type options struct {
	deadlineGuard bool
	requireEvents bool
	pluginNRI     string
	plugin2NRI    string
	legacyPlugin  string
}

// skipError is returned by a scenario that cannot run here; the runner
// prints it as SKIP with its reason.
type skipError struct{ reason string }

func (e skipError) Error() string { return "skipped: " + e.reason }

func skipf(format string, a ...interface{}) error {
	return skipError{fmt.Sprintf(format, a...)}
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
	flag.BoolVar(&opts.requireEvents, "require-events", false,
		"the -plugin understands -require EVENTS (required-event runs only then)")
	flag.StringVar(&opts.pluginNRI, "plugin-nri", "v0.12.5",
		"NRI version of the API the -plugin is built on (before v0.10: no v0.10+ contract additions)")
	flag.StringVar(&opts.plugin2NRI, "plugin2-nri", "",
		"NRI version of the API the -plugin2 is built on (default: -plugin-nri)")
	flag.StringVar(&opts.legacyPlugin, "legacy-plugin", "",
		"a contract plugin built on NRI v0.9.0: on v0.12 adaptations, the negative control of the StateChange deprecation check")
	flag.Parse()

	if err := checkBuild(); err != nil {
		fmt.Fprintf(os.Stderr, "driver: %v\n", err)
		os.Exit(2)
	}
	if opts.plugin2NRI == "" {
		opts.plugin2NRI = opts.pluginNRI
	}
	for _, v := range []string{opts.pluginNRI, opts.plugin2NRI} {
		if _, ok := parseVersion(v); !ok {
			fmt.Fprintf(os.Stderr, "driver: bad NRI version %q (want vX.Y.Z)\n", v)
			os.Exit(2)
		}
	}

	if *plugin == "" {
		fmt.Fprintln(os.Stderr, "driver: -plugin PATH is required")
		flag.Usage()
		os.Exit(2)
	}
	for _, p := range []*string{plugin, plugin2, &opts.legacyPlugin} {
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

	fmt.Printf("adaptation %s (runtime %s %s); -plugin built on NRI %s\n",
		adaptationVersion, runtimeName, runtimeVersion, opts.pluginNRI)
	passed, failed, skipped := 0, 0, 0
	for _, sc := range scenarios {
		if filter != nil && !filter.MatchString(sc.name) {
			continue
		}
		start := time.Now()
		err := runScenario(sc, *plugin, *plugin2, *verbose)
		d := time.Since(start).Round(time.Millisecond)
		var skip skipError
		switch {
		case errors.As(err, &skip):
			skipped++
			fmt.Printf("SKIP %s: %s\n", sc.name, skip.reason)
		case err != nil:
			failed++
			fmt.Printf("FAIL %s: %v\n", sc.name, err)
		default:
			passed++
			fmt.Printf("PASS %s (%v)\n", sc.name, d)
		}
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || passed == 0 {
		os.Exit(1)
	}
}

// checkBuild fails when the build tag (adaptationVersion) and the module
// actually linked (the -modfile) disagree.
func checkBuild() error {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("no build info: cannot tell which containerd/nri is linked")
	}
	for _, dep := range bi.Deps {
		if dep.Path != "github.com/containerd/nri" {
			continue
		}
		v := dep.Version
		if dep.Replace != nil {
			v = dep.Replace.Version
		}
		if v != adaptationVersion {
			return fmt.Errorf("built for the %s adaptation (build tags) but linked with containerd/nri %s (-modfile)",
				adaptationVersion, v)
		}
		return nil
	}
	return errors.New("containerd/nri not in the build info")
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

	if err == nil {
		// let a plugin that dies right after its last reply show in the log
		time.Sleep(50 * time.Millisecond)
		err = h.finalChecks()
	}
	if err != nil && verbose {
		h.dumpOutputs()
	}
	return err
}

// finalChecks are the rules every scenario obeys unless it provokes their
// violation on purpose: no warning, error or plugin drop in the
// adaptation's log but the lines the scenario allows or expects (and every
// expected line there), no deprecation recorded, and (v0.12) every plugin
// registered with the NRI version it announces.
func (h *H) finalChecks() error {
	lines := logs.since(h.logStart)
	for _, re := range h.expectLines {
		if !anyLineMatches(lines, re) {
			return fmt.Errorf("the adaptation never logged the expected line /%s/", re)
		}
	}
	if l, bad := unexpectedLogLineExcept(lines, append(h.allowLines, h.expectLines...)); bad {
		return fmt.Errorf("unexpected adaptation log line: %s %s", l.level, trunc(l.msg, 300))
	}
	if d := h.getDeprecations(); len(d) > 0 && !h.allowDeprecations {
		return fmt.Errorf("the adaptation recorded %d deprecation(s): %s", len(d), trunc(d[0], 300))
	}
	return h.checkRegistrations()
}
