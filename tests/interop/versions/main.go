// Command versions checks the crate's runtime → NRI version inference
// (nri::api::NriVersion::infer_from_runtime, asked through
// `interop-runtime -infer`) against what each containerd and CRI-O release
// really embeds: the github.com/containerd/nri requirement of the release's
// own go.mod, fetched through the Go module proxy.
//
// The releases checked: every release of containerd 1.7 and 2.x and of
// CRI-O from 1.26 on that the module proxy lists (the runtimes with NRI
// v0.2+), and every release upstream's own inference table names
// (runtimeVersionMap in pkg/api/version.go of the newest containerd/nri,
// read from its source), which also covers releases a proxy leaves out of
// its lists.
//
// A release whose go.mod requires NRI v0.12.0 or newer sends its NRI
// version in Configure: the inference is not used for it and is only shown.
// For every other release the inferred version must equal the go.mod's.
//
// Usage: versions -infer PATH_TO_INTEROP_RUNTIME [-nri-table VERSION] [-v]
//
// A release the module proxy refuses to serve (HTTP 403, 404, 410) is listed
// and not checked; any other failure to read a go.mod fails the check, and
// so does a runtime none of whose releases could be read.
//
// Exit status 1 when a release's inference differs from its go.mod, a
// release's go.mod cannot be read or a runtime went unchecked; 2 on bad
// usage or when `interop-runtime -infer` fails.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const nriModule = "github.com/containerd/nri"

// release is one runtime release and what is known about it.
type release struct {
	runtime, version string
	module           string // the Go module of the release
	embeds           string // the go.mod's containerd/nri version ("" if none)
	replaced         string // the replacement, when the go.mod replaces it
	inferred         string // the crate's inference ("" if none)
	inferErr         string
	fetchErr         string
	unserved         bool // the proxy refuses the release (fetchErr says how)
}

// runtimes: name, the oldest release with the NRI plugin API, and the Go
// module of each major version.
var runtimes = []struct {
	name    string
	oldest  string
	modules map[int]string
}{
	{"containerd", "v1.7.0", map[int]string{1: "github.com/containerd/containerd", 2: "github.com/containerd/containerd/v2"}},
	{"cri-o", "v1.26.0", map[int]string{1: "github.com/cri-o/cri-o"}},
}

func main() {
	infer := flag.String("infer", "", "the interop-runtime example binary (answers -infer)")
	tableVersion := flag.String("nri-table", "latest", "the containerd/nri version whose inference table lists releases to check")
	verbose := flag.Bool("v", false, "print every release, not only the mismatches")
	flag.Parse()
	if *infer == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: versions -infer PATH_TO_INTEROP_RUNTIME [-nri-table VERSION] [-v]")
		os.Exit(2)
	}

	byKey := map[string]*release{}
	add := func(rt, v string) {
		key := rt + " " + v
		if byKey[key] != nil {
			return
		}
		major, ok := majorOf(v)
		for _, r := range runtimes {
			if r.name == rt && ok && r.modules[major] != "" {
				byKey[key] = &release{runtime: rt, version: v, module: r.modules[major]}
				return
			}
		}
		fmt.Printf("NOTE %s %s: no Go module known for this release; not checked\n", rt, v)
	}

	// 1. what the module proxy lists
	var notes []string
	for _, r := range runtimes {
		mods := make([]string, 0, len(r.modules))
		for _, m := range r.modules {
			mods = append(mods, m)
		}
		sort.Strings(mods)
		for _, m := range mods {
			vs, err := listVersions(m)
			if err != nil {
				notes = append(notes, fmt.Sprintf("the module proxy lists no versions of %s (%v): its releases are checked where upstream's table names them", m, err))
				continue
			}
			for _, v := range vs {
				if isRelease(v) && compareVersions(v, r.oldest) >= 0 {
					add(r.name, v)
				}
			}
		}
	}

	// 2. what upstream's inference table names
	tableAt, table, err := upstreamTable(*tableVersion)
	if err != nil {
		fmt.Fprintf(os.Stderr, "versions: upstream's inference table: %v\n", err)
		os.Exit(1)
	}
	for _, e := range table {
		add(e[0], e[1])
	}
	rels := make([]*release, 0, len(byKey))
	for _, r := range byKey {
		rels = append(rels, r)
	}
	sort.Slice(rels, func(i, j int) bool {
		if rels[i].runtime != rels[j].runtime {
			return rels[i].runtime < rels[j].runtime
		}
		return compareVersions(rels[i].version, rels[j].version) < 0
	})

	// 3. each release's go.mod, 4. the crate's inference
	fetchGoMods(rels)
	if err := inferAll(*infer, rels); err != nil {
		fmt.Fprintf(os.Stderr, "versions: %v\n", err)
		os.Exit(2)
	}

	// 5. compare
	var agree, mismatch, sends, noNRI, unreadable int
	unserved := map[string][]string{} // runtime: releases the proxy refuses
	compared := map[string]int{}      // runtime: releases compared
	for _, r := range rels {
		if r.unserved {
			unserved[r.runtime] = append(unserved[r.runtime], r.version)
			if *verbose {
				fmt.Printf("unserved %s %s: %s\n", r.runtime, r.version, r.fetchErr)
			}
			continue
		}
		if r.fetchErr == "" {
			compared[r.runtime]++
		}
		crate := r.inferred
		if crate == "" {
			crate = "none (" + r.inferErr + ")"
		}
		embeds := r.embeds
		if r.replaced != "" {
			embeds += " (replaced by " + r.replaced + ")"
		}
		var verdict string
		switch {
		case r.fetchErr != "":
			unreadable++
			verdict = fmt.Sprintf("ERROR    %s %s: go.mod unreadable: %s", r.runtime, r.version, r.fetchErr)
		case r.embeds == "":
			noNRI++
			verdict = fmt.Sprintf("no-nri   %s %s: go.mod does not require %s; the crate infers %s", r.runtime, r.version, nriModule, crate)
		case compareVersions(r.embeds, "v0.12.0") >= 0:
			sends++
			verdict = fmt.Sprintf("sends    %s %s: go.mod %s, sent in Configure (the crate would infer %s, unused)", r.runtime, r.version, embeds, crate)
		case r.inferred == r.embeds:
			agree++
			verdict = fmt.Sprintf("ok       %s %s: go.mod %s, the crate infers %s", r.runtime, r.version, embeds, crate)
		default:
			mismatch++
			fmt.Printf("MISMATCH %s %s: go.mod %s, the crate infers %s\n", r.runtime, r.version, embeds, crate)
			continue
		}
		if *verbose || strings.HasPrefix(verdict, "ERROR") {
			fmt.Println(verdict)
		}
	}
	for _, n := range notes {
		fmt.Println("NOTE " + n)
	}
	nUnserved := 0
	for _, r := range runtimes {
		if vs := unserved[r.name]; len(vs) > 0 {
			nUnserved += len(vs)
			fmt.Printf("NOTE %s: %d releases the module proxy does not serve, not checked: %s\n",
				r.name, len(vs), strings.Join(vs, " "))
		}
	}
	empty := false
	for _, r := range runtimes {
		if compared[r.name] == 0 {
			fmt.Printf("FAIL %s: not one release's go.mod could be read: nothing was checked\n", r.name)
			empty = true
		}
	}
	fmt.Printf("%d releases (proxy lists and upstream's table of containerd/nri %s): %d agree, %d mismatch, %d send their NRI version, %d without NRI, %d unreadable, %d not served\n",
		len(rels), tableAt, agree, mismatch, sends, noNRI, unreadable, nUnserved)
	if mismatch > 0 || unreadable > 0 || empty {
		os.Exit(1)
	}
}

// ---------------------------------------------------------------------------
// The go command.

// goJSON runs `go args...` and decodes its stream of JSON objects.
func goJSON(args []string, each func(dec *json.Decoder) error) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = os.TempDir() // outside any module: plain module queries
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		if derr := each(dec); derr != nil {
			return derr
		}
	}
	if err != nil && len(out) == 0 {
		return fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// listVersions is `go list -m -versions MODULE`.
func listVersions(module string) ([]string, error) {
	var vs []string
	err := goJSON([]string{"list", "-m", "-e", "-json", "-versions", module}, func(dec *json.Decoder) error {
		var m struct {
			Versions []string
			Error    *struct{ Err string }
		}
		if err := dec.Decode(&m); err != nil {
			return err
		}
		if m.Error != nil {
			return errors.New(firstLine(m.Error.Err))
		}
		vs = m.Versions
		return nil
	})
	if err == nil && len(vs) == 0 {
		err = errors.New("no versions")
	}
	return vs, err
}

// fetchGoMods fills in each release's containerd/nri requirement: `go list
// -m -json MODULE@VERSION...` fetches only the .info and .mod files (unlike
// `go mod download`, which fetches the whole source), and `go mod edit
// -json` reads each go.mod.
func fetchGoMods(rels []*release) {
	byModule := map[string][]*release{}
	for _, r := range rels {
		byModule[r.module] = append(byModule[r.module], r)
	}
	for module, rs := range byModule {
		for start := 0; start < len(rs); start += 40 {
			batch := rs[start:min(start+40, len(rs))]
			args := []string{"list", "-m", "-e", "-json"}
			at := map[string]*release{}
			for _, r := range batch {
				args = append(args, module+"@"+r.version)
				at[r.version] = r
			}
			err := goJSON(args, func(dec *json.Decoder) error {
				var m struct {
					Version, GoMod string
					Query          string
					Error          *struct{ Err string }
				}
				if err := dec.Decode(&m); err != nil {
					return err
				}
				r := at[m.Version]
				if r == nil {
					r = at[m.Query]
				}
				if r == nil {
					return nil
				}
				switch {
				case m.Error != nil:
					r.fetchErr = firstLine(m.Error.Err)
				case m.GoMod == "":
					// go list leaves out a go.mod it could not fetch, without
					// an error: go mod download says why
					r.fetchErr = goModError(module + "@" + r.version)
				default:
					r.embeds, r.replaced, r.fetchErr = nriRequirement(m.GoMod)
				}
				r.unserved = refused(r.fetchErr)
				delete(at, r.version)
				return nil
			})
			for _, r := range at {
				if err != nil {
					r.fetchErr = err.Error()
				} else {
					r.fetchErr = "not answered by the go command"
				}
			}
		}
	}
}

// goModError is why `go mod download` cannot fetch module@version's go.mod.
func goModError(query string) string {
	var m struct{ Error, GoMod string }
	err := goJSON([]string{"mod", "download", "-json", query}, func(dec *json.Decoder) error {
		return dec.Decode(&m)
	})
	switch {
	case err != nil:
		return err.Error()
	case m.Error != "":
		return firstLine(m.Error)
	}
	return "the go command reports no go.mod"
}

// refused reports whether a fetch error is the module proxy refusing to
// serve the release (HTTP 403, 404 or 410), rather than a failure to reach
// it.
func refused(fetchErr string) bool {
	for _, s := range []string{": 403 Forbidden", ": 404 Not Found", ": 410 Gone"} {
		if strings.Contains(fetchErr, s) {
			return true
		}
	}
	return false
}

// nriRequirement reads a go.mod's containerd/nri requirement, after a
// replace directive for it.
func nriRequirement(gomod string) (version, replaced, errText string) {
	var f struct {
		Require []struct{ Path, Version string }
		Replace []struct {
			Old, New struct{ Path, Version string }
		}
	}
	out, err := exec.Command("go", "mod", "edit", "-json", gomod).Output()
	if err != nil {
		return "", "", fmt.Sprintf("go mod edit -json %s: %v", gomod, err)
	}
	if err := json.Unmarshal(out, &f); err != nil {
		return "", "", fmt.Sprintf("%s: %v", gomod, err)
	}
	for _, r := range f.Require {
		if r.Path == nriModule {
			version = r.Version
		}
	}
	for _, r := range f.Replace {
		if r.Old.Path == nriModule && (r.Old.Version == "" || r.Old.Version == version) {
			replaced = strings.TrimSpace(r.New.Path + " " + r.New.Version)
			if r.New.Path == nriModule && r.New.Version != "" {
				version = r.New.Version
			}
		}
	}
	return version, replaced, ""
}

// upstreamTable reads the releases named by runtimeVersionMap in
// pkg/api/version.go of containerd/nri at version (or the newest): pairs of
// runtime and release.
func upstreamTable(version string) (string, [][2]string, error) {
	var mod struct {
		Version, Dir string
		Error        string
	}
	err := goJSON([]string{"mod", "download", "-json", nriModule + "@" + version}, func(dec *json.Decoder) error {
		return dec.Decode(&mod)
	})
	if err == nil && mod.Error != "" {
		err = errors.New(firstLine(mod.Error))
	}
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(mod.Dir, "pkg", "api", "version.go")
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		return "", nil, err
	}
	var out [][2]string
	ast.Inspect(file, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "runtimeVersionMap" || len(vs.Values) != 1 {
			return true
		}
		outer, ok := vs.Values[0].(*ast.CompositeLit)
		if !ok {
			return false
		}
		for _, e := range outer.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			rt := stringLit(kv.Key)
			inner, ok := kv.Value.(*ast.CompositeLit)
			if rt == "" || !ok {
				continue
			}
			for _, ie := range inner.Elts {
				if ikv, ok := ie.(*ast.KeyValueExpr); ok {
					if v := stringLit(ikv.Key); v != "" {
						out = append(out, [2]string{rt, v})
					}
				}
			}
		}
		return false
	})
	if len(out) == 0 {
		return "", nil, fmt.Errorf("%s: no runtimeVersionMap entries found (has upstream moved its table?)", path)
	}
	return mod.Version, out, nil
}

func stringLit(e ast.Expr) string {
	if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
		if s, err := strconv.Unquote(lit.Value); err == nil {
			return s
		}
	}
	return ""
}

// ---------------------------------------------------------------------------
// The crate's inference.

// inferAll asks `interop-runtime -infer` for every release at once.
func inferAll(bin string, rels []*release) error {
	var in bytes.Buffer
	for _, r := range rels {
		fmt.Fprintf(&in, "%s %s\n", r.runtime, r.version)
	}
	cmd := exec.Command(bin, "-infer")
	cmd.Stdin = &in
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s -infer: %v", bin, err)
	}
	byKey := map[string]*release{}
	for _, r := range rels {
		byKey[r.runtime+" "+r.version] = r
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	answered := 0
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		if len(f) < 3 {
			return fmt.Errorf("%s -infer: unreadable answer %q", bin, sc.Text())
		}
		r := byKey[f[0]+" "+f[1]]
		if r == nil {
			return fmt.Errorf("%s -infer: answer %q for a release not asked about", bin, sc.Text())
		}
		answered++
		if f[2] == "-" {
			if len(f) == 4 {
				r.inferErr = f[3]
			}
			continue
		}
		r.inferred = f[2]
	}
	if answered != len(rels) {
		return fmt.Errorf("%s -infer answered %d of %d releases", bin, answered, len(rels))
	}
	return nil
}

// ---------------------------------------------------------------------------
// Versions.

// parse reads vMAJOR.MINOR.PATCH[-PRE][+BUILD].
func parse(v string) (nums [3]int, pre string, ok bool) {
	s, found := strings.CutPrefix(v, "v")
	if !found {
		return nums, "", false
	}
	s, _, _ = strings.Cut(s, "+")
	s, pre, _ = strings.Cut(s, "-")
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nums, "", false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nums, "", false
		}
		nums[i] = n
	}
	return nums, pre, true
}

func majorOf(v string) (int, bool) {
	n, _, ok := parse(v)
	return n[0], ok
}

// isRelease: a version without a pre-release part.
func isRelease(v string) bool {
	_, pre, ok := parse(v)
	return ok && pre == ""
}

// compareVersions orders versions by their numbers, a pre-release before
// its release (pre-releases among themselves by text, enough here).
func compareVersions(a, b string) int {
	na, pa, _ := parse(a)
	nb, pb, _ := parse(b)
	for i := range na {
		if na[i] != nb[i] {
			if na[i] < nb[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case pa == pb:
		return 0
	case pa == "":
		return 1
	case pb == "":
		return -1
	}
	return strings.Compare(pa, pb)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
