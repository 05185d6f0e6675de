package main

// Random OCI hook directories for the hook injector, and what
// go.podman.io/common/pkg/hooks v0.66.1 makes of them: whether hooks.New
// fails, and for several containers the hooks Manager.Hooks injects (or
// its error), as the Go hook-injector asks for them.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/common/pkg/hooks"
)

type HookEntry struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"` // file, dir, dangling (symlink to nothing), link (symlink to Target)
	Content string `json:"content,omitempty"`
	Target  string `json:"target,omitempty"`
}

type HookDir struct {
	Kind    string      `json:"kind"` // dir, missing, file (not a directory)
	Entries []HookEntry `json:"entries,omitempty"`
}

type HookQuery struct {
	Args           []string          `json:"args"`
	PodAnnotations map[string]string `json:"pod_annotations"`
	CtrAnnotations map[string]string `json:"ctr_annotations"`
	BindMounts     bool              `json:"bind_mounts"`
	// Stage to hooks, or Error.
	Result map[string][]rspec.Hook `json:"result,omitempty"`
	Error  string                  `json:"error,omitempty"`
}

type HookCase struct {
	Dirs     []HookDir   `json:"dirs"`
	NewError string      `json:"new_error,omitempty"`
	Queries  []HookQuery `json:"queries"`
}

var hookNames = []string{
	"10-always.json", "10-Always.json", "20-busybox.json", "a.json", "A.json", "b.json", "B.JSON",
	"c.json.bak", "hook.json", "Hook.json", "z.json", "Ä.json", "ä.json", "İ.json", "i.json",
	"I.json", "99-last.json", "00-first.json", "_x.json", "x y.json", "readme.txt",
}

var hookPaths = []string{"/usr/bin/env", "/", "/dev/null", "/nonexistent/hook", "/bin/sh/x", ""}

// goodPatterns compile in Go; patterns has them and odd ones.
var goodPatterns = []string{
	"^/bin/busybox$", "busybox$", "busybox", "nginx", ".*", "", "^$", `\d+`, `^[0-9]+$`, `^\w+$`,
	`\s`, `\bfoo\b`, `(?i)BUSYBOX`, `\Qa.b\E`, `a.b`, `\p{Greek}`, `\pL+`, `[[:alpha:]]+`, `[a&&b]`,
	`\<`, `x{a}`, `[\d]`, `(?i)k`, `^demo\.io/`, `^yes$`, `(?s)a.b`, `^\p{Nd}+$`, `[^\x00-\x7f]`,
	`(?i)ſ`, `^(io\.kubernetes|demo\.io)/`, `kubernetes`, `.`, `^.$`, `^[[:^digit:]]+$`, `\PL`,
}

var patterns = []string{
	"^/bin/busybox$", "busybox$", "busybox", "nginx", ".*", "", "^$", `\d+`, `^[0-9]+$`, `^\w+$`,
	`\s`, `\bfoo\b`, `(?i)BUSYBOX`, `\Qa.b\E`, `a.b`, `a{1001}`, `a**`, `\Z`, `(?x)a`, `\p{Greek}`,
	`\p{greek}`, `\p{Old_Italic}`, `\pL+`, `[[:alpha:]]+`, `[a&&b]`, `\<`, `x{a}`, `\012`, `\8`,
	`[\d]`, `(?P<n>a)(?P<n>b)`, `(?i)k`, `\x{41}`, `^demo\.io/`, `^yes$`, `[`, `(`, `a)`, `\C`,
	`(?U)a+`, `(?s)a.b`, `^\p{Nd}+$`, `[^\x00-\x7f]`, `(?i)ſ`, `\p{Lu}`, `\PL`, `[\p{^L}]`,
	`\pN`, `^[[:^digit:]]+$`, `x{2}{3}`, `\x{110000}`, `(?i-i)a`, `(?-)a`, `(?)a`, `\1`, `\0`,
	`[z-a]`, `[a-]`, `\p{Letter}`, `\p{Cased_Letter}`, `\p{Assigned}`, `[[:foo:]]`, `a{2,1}`,
	`^(io\.kubernetes|demo\.io)/`, `kubernetes`, `.`, `^.$`,
}

var argsPool = [][]string{
	{}, {"/bin/busybox", "sh"}, {"/bin/busybox", "sh"}, {"nginx"}, {"/usr/bin/kubernetes"}, {"demo.io/x"}, {"busybox"}, {"nginx"}, {"/usr/sbin/nginx", "-g"}, {"٣٤"}, {"34"},
	{"a b"}, {"foo bar"}, {"ſ"}, {"K"}, {"k"}, {"Ωmega"}, {"a.b"}, {"axb"}, {"x{a}"}, {"a&&b"},
	{"<"}, {"\n"}, {""}, {"\u00a0"}, {"foo\tbar"}, {"é"}, {"aa"}, {"AAAA"}, {"é", "x"},
}

var annotationKeys = []string{"demo.io/hook", "io.kubernetes.pod.name", "ſtuff", "a.b", "Κ", "34", "x"}
var annotationValues = []string{"yes", "no", "٣", "3", "", "YES", "a b", "Ω"}

func (g *gen) hookPattern() string {
	if !g.wild || g.chance(0.7) {
		return g.pick(goodPatterns...)
	}
	return g.pick(patterns...)
}

func (g *gen) jsonValue(v interface{}) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// either is good, or in a wild file now and then one of bad.
func (g *gen) either(good string, bad ...string) string {
	if g.wild && g.chance(0.3) {
		return g.pick(bad...)
	}
	return good
}

// hookContent makes a hook file's text; a wild one has odd values.
func (g *gen) hookContent(id string) string {
	g.wild = g.chance(0.2)
	if g.wild && g.chance(0.1) {
		return g.pick("", "null", "[]", `"x"`, "{", `{"version": 1}`, `{"version": "2.0.0"}`, "\ufeff{}", `{"version":"1.0.0"} x`)
	}
	var fields []string
	add := func(key, value string) {
		if g.chance(0.1) {
			key = g.key(key)
		}
		fields = append(fields, fmt.Sprintf("%q: %s", key, value))
		if g.chance(0.03) {
			fields = append(fields, fmt.Sprintf("%q: %s", key, value))
		}
	}
	strs := func(n int, f func() string) string {
		var items []string
		for i := 0; i < n; i++ {
			items = append(items, g.jsonValue(f()))
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	path := g.either("/bin/sh", hookPaths...)
	if g.chance(0.15) {
		// The 0.1.0 format.
		if g.chance(0.7) {
			add("version", g.pick(`"0.1.0"`, `""`))
		}
		if !g.wild || g.chance(0.8) {
			add("hook", g.jsonValue(path))
		}
		if g.chance(0.8) {
			add("arguments", strs(1, func() string { return id }))
		}
		stages := strs(1+g.r.Intn(2), func() string { return g.stage() })
		switch g.r.Intn(10) {
		case 0:
			add("stage", stages)
			add("stages", stages)
		case 1, 2:
			add("stage", stages)
		case 3:
		default:
			add("stages", stages)
		}
		if g.chance(0.5) {
			add(g.pick("cmd", "cmds"), strs(1+g.r.Intn(2), g.hookPattern))
		}
		if g.chance(0.4) {
			add(g.pick("annotation", "annotations"), strs(1+g.r.Intn(2), g.hookPattern))
		}
		if g.chance(0.4) {
			add(g.pick("hasbindmounts", "hasBindMounts"), g.pick("true", "false", "null"))
		}
		return "{" + strings.Join(fields, ", ") + "}"
	}
	if !g.wild || g.chance(0.9) {
		add("version", g.either(`"1.0.0"`, `"1.0.1"`, `"2"`, "1"))
	}
	var hook []string
	if !g.wild || g.chance(0.8) {
		hook = append(hook, fmt.Sprintf(`"path": %s`, g.jsonValue(path)))
	}
	if !g.wild || g.chance(0.8) {
		extra := ""
		if g.chance(0.2) {
			// JSON string escapes, as Go decodes them (a lone surrogate
			// becomes U+FFFD), and a raw tab, which JSON does not allow.
			extra = ", " + g.either(g.pick(`"\u00e9"`, `"\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800"`, `"a\/b"`, `"\t\u0000"`, `"é😀"`, `""`), "\"a\tb\"", `"\x41"`, `"\u12"`)
		}
		hook = append(hook, fmt.Sprintf(`"args": ["hook", %s%s]`, g.jsonValue(id), extra))
	} else if g.chance(0.5) {
		hook = append(hook, `"args": "hook"`)
	}
	if g.chance(0.3) {
		hook = append(hook, fmt.Sprintf(`"env": %s`, g.either(g.pick(`["A=1"]`, `[]`, `null`, `["A=1", "B=2"]`), `[1]`, `"A=1"`)))
	}
	if g.chance(0.3) {
		hook = append(hook, fmt.Sprintf(`"timeout": %s`, g.either(g.pick("5", "0", "-1", "null", "9223372036854775807"), "5.0", "5e0", `"5"`, "9223372036854775808")))
	}
	if !g.wild || g.chance(0.8) {
		add("hook", "{"+strings.Join(hook, ", ")+"}")
	}
	var when []string
	addWhen := func(key, value string) {
		if g.chance(0.1) {
			key = g.key(key)
		}
		when = append(when, fmt.Sprintf("%q: %s", key, value))
	}
	if g.chance(0.5) {
		addWhen("always", g.either(g.pick("true", "true", "true", "false", "null"), `"true"`, "1"))
	}
	if g.chance(0.3) {
		addWhen("hasBindMounts", g.pick("true", "false", "null"))
	}
	if g.chance(0.3) {
		var pairs []string
		for i := 0; i < 1+g.r.Intn(2); i++ {
			pairs = append(pairs, fmt.Sprintf("%s: %s", g.jsonValue(g.hookPattern()), g.jsonValue(g.hookPattern())))
		}
		addWhen("annotations", "{"+strings.Join(pairs, ", ")+"}")
	}
	if g.chance(0.4) {
		addWhen("commands", strs(g.r.Intn(3), g.hookPattern))
	}
	if g.chance(0.15) {
		addWhen("or", g.pick("true", "false"))
	}
	if g.chance(0.05) {
		addWhen("unknown", `{"x": 1}`)
	}
	if !g.wild || g.chance(0.8) {
		add("when", "{"+strings.Join(when, ", ")+"}")
	}
	if !g.wild || g.chance(0.8) {
		stages := strs(1+g.r.Intn(3), func() string { return g.stage() })
		if g.wild && g.chance(0.3) {
			stages = g.pick("[]", "null", `"prestart"`)
		}
		add("stages", stages)
	}
	if g.chance(0.05) {
		add("extra", `[1, 2, {"a": null}]`)
	}
	return "{" + strings.Join(fields, ",\n ") + "}"
}

var ocistages = []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop", "prestart", "poststop"}

func (g *gen) stage() string {
	if g.wild && g.chance(0.1) {
		return g.pick("prestartt", "Prestart", "")
	}
	return g.pick(ocistages...)
}

// hookCase makes hook directories under tmp, records them and what the
// library makes of them.
func hookCase(r *rand.Rand, tmp string, n int) (Case, error) {
	g := &gen{r: r}
	root := filepath.Join(tmp, fmt.Sprintf("case-%d", n))
	hc := &HookCase{}
	var dirs []string
	ids := 0
	for d := 0; d < 1+g.r.Intn(3); d++ {
		dir := filepath.Join(root, fmt.Sprintf("d%d", d))
		dirs = append(dirs, dir)
		hd := HookDir{Kind: "dir"}
		switch {
		case g.chance(0.05):
			hd.Kind = "missing"
		case g.chance(0.02):
			hd.Kind = "file"
		}
		if hd.Kind == "dir" {
			seen := map[string]bool{}
			for f := 0; f < g.r.Intn(6); f++ {
				name := g.pick(hookNames...)
				if seen[name] {
					continue
				}
				seen[name] = true
				e := HookEntry{Name: name, Kind: "file"}
				switch {
				case g.chance(0.03):
					e.Kind = "dir"
				case g.chance(0.03):
					e.Kind = "dangling"
				case g.chance(0.04) && len(hd.Entries) > 0:
					e.Kind, e.Target = "link", hd.Entries[0].Name
				default:
					ids++
					e.Content = g.hookContent(fmt.Sprintf("id-%d", ids))
				}
				hd.Entries = append(hd.Entries, e)
			}
		}
		hc.Dirs = append(hc.Dirs, hd)
	}
	if err := writeDirs(root, hc.Dirs); err != nil {
		return Case{}, err
	}
	ctx := context.Background()
	if _, err := hooks.New(ctx, dirs, []string{}); err != nil {
		hc.NewError = err.Error()
	}
	// The hooks that load, as the library's monitor keeps them: the same
	// directories without the files that fail to load.
	var kept []string
	for i, dir := range dirs {
		k := filepath.Join(root, fmt.Sprintf("kept%d", i))
		kept = append(kept, k)
		if err := os.MkdirAll(k, 0o755); err != nil {
			return Case{}, err
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			if _, err := hooks.Read(path, []string{}); err != nil {
				continue
			}
			content, err := os.ReadFile(path)
			if err != nil {
				return Case{}, err
			}
			if err := os.WriteFile(filepath.Join(k, e.Name()), content, 0o644); err != nil {
				return Case{}, err
			}
		}
	}
	mgr, err := hooks.New(ctx, kept, []string{})
	if err != nil {
		return Case{}, fmt.Errorf("the loadable hooks do not load: %w", err)
	}
	for q := 0; q < 3+g.r.Intn(4); q++ {
		query := HookQuery{
			Args:           argsPool[g.r.Intn(len(argsPool))],
			PodAnnotations: map[string]string{},
			CtrAnnotations: map[string]string{},
			BindMounts:     g.chance(0.5),
		}
		for i := 0; i < g.r.Intn(3); i++ {
			query.PodAnnotations[g.pick(annotationKeys...)] = g.pick(annotationValues...)
		}
		for i := 0; i < g.r.Intn(3); i++ {
			query.CtrAnnotations[g.pick(annotationKeys...)] = g.pick(annotationValues...)
		}
		// The Go hook-injector's CreateContainer.
		annotations := map[string]string{}
		for k, v := range query.CtrAnnotations {
			annotations[k] = v
		}
		for k, v := range query.PodAnnotations {
			annotations[k] = v
		}
		spec := &rspec.Spec{Process: &rspec.Process{Args: query.Args}}
		if _, err := mgr.Hooks(spec, annotations, query.BindMounts); err != nil {
			query.Error = err.Error()
		} else {
			query.Result = map[string][]rspec.Hook{}
			if h := spec.Hooks; h != nil {
				for stage, list := range map[string][]rspec.Hook{
					"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "createContainer": h.CreateContainer,
					"startContainer": h.StartContainer, "poststart": h.Poststart, "poststop": h.Poststop,
				} {
					if len(list) > 0 {
						query.Result[stage] = list
					}
				}
			}
		}
		hc.Queries = append(hc.Queries, query)
	}
	return Case{Plugin: "hook-injector", Hooks: hc}, nil
}

func writeDirs(root string, dirs []HookDir) error {
	for i, d := range dirs {
		dir := filepath.Join(root, fmt.Sprintf("d%d", i))
		switch d.Kind {
		case "missing":
			continue
		case "file":
			if err := os.MkdirAll(root, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(dir, []byte("not a directory"), 0o644); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, e := range d.Entries {
			path := filepath.Join(dir, e.Name)
			var err error
			switch e.Kind {
			case "file":
				err = os.WriteFile(path, []byte(e.Content), 0o644)
			case "dir":
				err = os.Mkdir(path, 0o755)
			case "dangling":
				err = os.Symlink("missing-target", path)
			case "link":
				err = os.Symlink(e.Target, path)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
