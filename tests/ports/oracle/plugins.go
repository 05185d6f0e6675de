package main

// The annotation handling of containerd/nri's plugins/device-injector and
// plugins/ulimit-adjuster: the same struct shapes, keys and checks, decoded
// with the same library. Results are reported as JSON for comparison.
//
// The device injector's kinds of NRI v0.10-v0.12 (network devices,
// scheduling policy, sysctls, memory policy) follow the sample's documented
// keys and value shapes, decoded with sigs.k8s.io/yaml and applied with Go's
// NRI API (its name tables and ContainerAdjustment setters), as a Go plugin
// does. Where Go takes a value the Rust port refuses on purpose, the case
// records a quirk naming why (see linuxQuirk*).

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/nri/pkg/api"
	yamlv2 "gopkg.in/yaml.v2"
	"sigs.k8s.io/yaml"
)

type device struct {
	Path     string `json:"path"`
	Type     string `json:"type"`
	Major    int64  `json:"major"`
	Minor    int64  `json:"minor"`
	FileMode uint32 `json:"file_mode"`
	UID      uint32 `json:"uid"`
	GID      uint32 `json:"gid"`
}

type mount struct {
	Source      string   `json:"source"`
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Options     []string `json:"options"`
}

type ioPrio struct {
	Class    string `json:"class"`
	Priority int32  `json:"priority"`
}

type ulimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

// What reaches the runtime, in the shape the Rust test rebuilds.
type outDevice struct {
	Path     string  `json:"path"`
	Type     string  `json:"type"`
	Major    int64   `json:"major"`
	Minor    int64   `json:"minor"`
	FileMode *uint32 `json:"file_mode"`
	UID      *uint32 `json:"uid"`
	GID      *uint32 `json:"gid"`
}

type outMount struct {
	Source      string   `json:"source"`
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Options     []string `json:"options"`
}

type outIOPrio struct {
	Class    string `json:"class"`
	Priority int32  `json:"priority"`
}

type deviceResult struct {
	Devices      []outDevice       `json:"devices"`
	CDIDevices   []string          `json:"cdi_devices"`
	Mounts       []outMount        `json:"mounts"`
	IOPriority   *outIOPrio        `json:"io_priority"`
	NetDevices   map[string]string `json:"net_devices"`
	Scheduler    *outScheduler     `json:"scheduler"`
	Sysctl       map[string]string `json:"sysctl"`
	MemoryPolicy *outMemoryPolicy  `json:"memory_policy"`
}

// The annotated shapes of the NRI v0.10-v0.12 kinds.
type netDevice struct {
	HostIf string `json:"hostIf"`
	Name   string `json:"name"`
}

type schedulingPolicy struct {
	Policy   string   `json:"policy"`
	Nice     int32    `json:"nice"`
	Priority int32    `json:"priority"`
	Flags    []string `json:"flags"`
	Runtime  uint64   `json:"runtime"`
	Deadline uint64   `json:"deadline"`
	Period   uint64   `json:"period"`
}

type memoryPolicy struct {
	Mode  string   `json:"mode"`
	Nodes string   `json:"nodes"`
	Flags []string `json:"flags"`
}

// What reaches the runtime of them, enum values by name.
type outScheduler struct {
	Policy   string   `json:"policy"`
	Nice     int32    `json:"nice"`
	Priority int32    `json:"priority"`
	Flags    []string `json:"flags"`
	Runtime  uint64   `json:"runtime"`
	Deadline uint64   `json:"deadline"`
	Period   uint64   `json:"period"`
}

type outMemoryPolicy struct {
	Mode  string   `json:"mode"`
	Nodes string   `json:"nodes"`
	Flags []string `json:"flags"`
}

// Quirks: inputs Go takes and the Rust port refuses on purpose.
const (
	linuxQuirkNoHostIf    = "net-device-without-host-if"
	linuxQuirkUnknownName = "unknown-name"
	linuxQuirkEmptySysctl = "empty-sysctl"
)

// The kinds, each with its current and deprecated key prefix.
var linuxKinds = [][2]string{
	{"network-devices.noderesource.dev", "network-devices.nri.io"},
	{"scheduling-policy.noderesource.dev", "scheduling-policy.nri.io"},
	{"sysctl.noderesource.dev", "sysctl.nri.io"},
	{"memory-policy.noderesource.dev", "memory-policy.nri.io"},
}

type rlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

type ulimitResult struct {
	Rlimits []rlimit `json:"rlimits"`
}

var deviceKinds = [][2]string{
	{"devices.noderesource.dev", "devices.nri.io"},
	{"cdi-devices.noderesource.dev", "cdi-devices.nri.io"},
	{"mounts.noderesource.dev", "mounts.nri.io"},
	{"io-priority.noderesource.dev", "io-priority.nri.io"},
}

func getAnnotation(annotations map[string]string, mainKey, oldKey, ctr string) []byte {
	for _, key := range []string{
		mainKey + "/container." + ctr,
		oldKey + "/container." + ctr,
		mainKey + "/pod",
		oldKey + "/pod",
		mainKey,
		oldKey,
	} {
		if value, ok := annotations[key]; ok {
			return []byte(value)
		}
	}
	return nil
}

func u32p(v uint32) *uint32 {
	if v == 0 {
		return nil
	}
	return &v
}

// runDeviceInjector is the Go plugin's CreateContainer; quirks collects the
// quirks of what it applied.
func runDeviceInjector(annotations map[string]string, ctr string, quirks map[string]bool) (*deviceResult, error) {
	res := &deviceResult{}
	if a := getAnnotation(annotations, deviceKinds[0][0], deviceKinds[0][1], ctr); len(a) != 0 {
		var devices []device
		if err := yaml.Unmarshal(a, &devices); err != nil {
			return nil, err
		}
		for _, d := range devices {
			res.Devices = append(res.Devices, outDevice{d.Path, d.Type, d.Major, d.Minor, u32p(d.FileMode), u32p(d.UID), u32p(d.GID)})
		}
	}
	if a := getAnnotation(annotations, deviceKinds[1][0], deviceKinds[1][1], ctr); len(a) != 0 {
		var names []string
		if err := yaml.Unmarshal(a, &names); err != nil {
			return nil, err
		}
		res.CDIDevices = names
	}
	if a := getAnnotation(annotations, deviceKinds[2][0], deviceKinds[2][1], ctr); len(a) != 0 {
		var mounts []mount
		if err := yaml.Unmarshal(a, &mounts); err != nil {
			return nil, err
		}
		for _, m := range mounts {
			res.Mounts = append(res.Mounts, outMount(m))
		}
	}
	if a := getAnnotation(annotations, deviceKinds[3][0], deviceKinds[3][1], ctr); a != nil {
		p := &ioPrio{}
		if err := yaml.Unmarshal(a, p); err != nil {
			return nil, err
		}
		switch p.Class {
		case "IOPRIO_CLASS_NONE", "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE":
			res.IOPriority = &outIOPrio{p.Class, p.Priority}
		}
	}
	adjust := &api.ContainerAdjustment{}
	if err := adjustLinux(annotations, ctr, adjust, quirks); err != nil {
		return nil, err
	}
	linuxResult(adjust, res)
	return res, nil
}

// adjustLinux applies the NRI v0.10-v0.12 kinds as the Go plugin does, and
// notes the quirks of what it applied.
func adjustLinux(annotations map[string]string, ctr string, adjust *api.ContainerAdjustment, quirks map[string]bool) error {
	if a := getAnnotation(annotations, linuxKinds[0][0], linuxKinds[0][1], ctr); len(a) != 0 {
		var devices []netDevice
		if err := yaml.Unmarshal(a, &devices); err != nil {
			return err
		}
		for _, d := range devices {
			if d.HostIf == "" {
				quirks[linuxQuirkNoHostIf] = true
			}
			adjust.AddLinuxNetDevice(d.HostIf, &api.LinuxNetDevice{Name: d.Name})
		}
	}
	if a := getAnnotation(annotations, linuxKinds[1][0], linuxKinds[1][1], ctr); len(a) != 0 {
		p := &schedulingPolicy{}
		if err := yaml.Unmarshal(a, p); err != nil {
			return err
		}
		policy, known := api.LinuxSchedulerPolicy_value[p.Policy]
		if !known && p.Policy != "" {
			quirks[linuxQuirkUnknownName] = true
		}
		sch := &api.LinuxScheduler{
			Policy:   api.LinuxSchedulerPolicy(policy),
			Nice:     p.Nice,
			Priority: p.Priority,
			Runtime:  p.Runtime,
			Deadline: p.Deadline,
			Period:   p.Period,
		}
		for _, f := range p.Flags {
			flag, known := api.LinuxSchedulerFlag_value[f]
			if !known {
				quirks[linuxQuirkUnknownName] = true
			}
			sch.Flags = append(sch.Flags, api.LinuxSchedulerFlag(flag))
		}
		adjust.SetLinuxScheduler(sch)
	}
	if a := getAnnotation(annotations, linuxKinds[2][0], linuxKinds[2][1], ctr); len(a) != 0 {
		var sysctls map[string]string
		if err := yaml.Unmarshal(a, &sysctls); err != nil {
			return err
		}
		for k, v := range sysctls {
			if k == "" || v == "" {
				quirks[linuxQuirkEmptySysctl] = true
			}
			adjust.SetLinuxSysctl(k, v)
		}
	}
	if a := getAnnotation(annotations, linuxKinds[3][0], linuxKinds[3][1], ctr); len(a) != 0 {
		p := &memoryPolicy{}
		if err := yaml.Unmarshal(a, p); err != nil {
			return err
		}
		mode, known := api.MpolMode_value[p.Mode]
		if !known && p.Mode != "" {
			quirks[linuxQuirkUnknownName] = true
		}
		var flags []api.MpolFlag
		for _, f := range p.Flags {
			flag, known := api.MpolFlag_value[f]
			if !known {
				quirks[linuxQuirkUnknownName] = true
			}
			flags = append(flags, api.MpolFlag(flag))
		}
		adjust.SetLinuxMemoryPolicy(api.MpolMode(mode), p.Nodes, flags...)
	}
	return nil
}

// linuxResult reports what adjust holds of the NRI v0.10-v0.12 kinds.
func linuxResult(adjust *api.ContainerAdjustment, res *deviceResult) {
	l := adjust.GetLinux()
	if len(l.GetNetDevices()) > 0 {
		res.NetDevices = map[string]string{}
		for host, d := range l.GetNetDevices() {
			res.NetDevices[host] = d.GetName()
		}
	}
	if s := l.GetScheduler(); s != nil {
		out := &outScheduler{
			Policy: s.Policy.String(), Nice: s.Nice, Priority: s.Priority,
			Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period,
		}
		for _, f := range s.Flags {
			out.Flags = append(out.Flags, f.String())
		}
		res.Scheduler = out
	}
	if len(l.GetSysctl()) > 0 {
		res.Sysctl = l.GetSysctl()
	}
	if m := l.GetMemoryPolicy(); m != nil {
		out := &outMemoryPolicy{Mode: m.Mode.String(), Nodes: m.Nodes}
		for _, f := range m.Flags {
			out.Flags = append(out.Flags, f.String())
		}
		res.MemoryPolicy = out
	}
}

// sortedQuirks lists the quirks noted.
func sortedQuirks(quirks map[string]bool) []string {
	var list []string
	for q := range quirks {
		list = append(list, q)
	}
	sort.Strings(list)
	return list
}

var validRlimits = map[string]bool{
	"AS": true, "CORE": true, "CPU": true, "DATA": true, "FSIZE": true, "LOCKS": true,
	"MEMLOCK": true, "MSGQUEUE": true, "NICE": true, "NOFILE": true, "NPROC": true,
	"RSS": true, "RTPRIO": true, "RTTIME": true, "SIGPENDING": true, "STACK": true,
}

// runUlimitAdjuster is the Go plugin's CreateContainer.
func runUlimitAdjuster(annotations map[string]string, ctr string) (*ulimitResult, error) {
	var val string
	for _, key := range []string{"ulimits.noderesource.dev/container." + ctr, "ulimits.nri.containerd.io/container." + ctr} {
		var ok bool
		if val, ok = annotations[key]; ok {
			break
		}
	}
	res := &ulimitResult{Rlimits: []rlimit{}}
	if val == "" {
		return res, nil
	}
	ulimits := make([]ulimit, 0)
	if err := yaml.Unmarshal([]byte(val), &ulimits); err != nil {
		return nil, err
	}
	for i := range ulimits {
		typ := strings.TrimPrefix(strings.ToUpper(ulimits[i].Type), "RLIMIT_")
		if !validRlimits[typ] {
			return nil, fmt.Errorf("failed to parse type: %q", ulimits[i].Type)
		}
		ulimits[i].Type = "RLIMIT_" + typ
	}
	for _, u := range ulimits {
		if u.Hard < u.Soft {
			return nil, fmt.Errorf("ulimit %q must have hard limit >= soft limit", u.Type)
		}
		res.Rlimits = append(res.Rlimits, rlimit(u))
	}
	return res, nil
}

// keyString is how sigs.k8s.io/yaml names a YAML map key in JSON.
func keyString(k interface{}) (string, bool) {
	switch k := k.(type) {
	case string:
		return k, true
	case int:
		return strconv.Itoa(k), true
	case int64:
		return strconv.FormatInt(k, 10), true
	case float64:
		s := strconv.FormatFloat(k, 'g', -1, 32)
		switch s {
		case "+Inf":
			s = ".inf"
		case "-Inf":
			s = "-.inf"
		case "NaN":
			s = ".nan"
		}
		return s, true
	case bool:
		if k {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// ambiguous tells whether two keys of one YAML mapping become the same JSON
// key: sigs.k8s.io/yaml then keeps whichever Go's map iteration visits last.
func ambiguous(text string) bool {
	var v interface{}
	if yamlv2.Unmarshal([]byte(text), &v) != nil {
		return false
	}
	var walk func(v interface{}) bool
	walk = func(v interface{}) bool {
		switch v := v.(type) {
		case map[interface{}]interface{}:
			seen := map[string]bool{}
			for k, e := range v {
				s, ok := keyString(k)
				if ok && seen[s] {
					return true
				}
				seen[s] = true
				if walk(e) {
					return true
				}
			}
		case []interface{}:
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

// record runs a plugin on annotations and fills the case's outcome; where
// Go's result depends on map iteration order, it runs it until it has seen
// every outcome (many times over) and lists them.
func record(c *Case, run func() (interface{}, error)) {
	outcome := func() (string, string) {
		res, err := run()
		if err != nil {
			return "", err.Error()
		}
		b, merr := json.Marshal(res)
		if merr != nil {
			panic(merr)
		}
		return string(b), ""
	}
	res, errText := outcome()
	c.Result, c.Error = json.RawMessage(res), errText
	if errText != "" {
		c.Result = nil
	}
	isAmbiguous := false
	for _, v := range c.Annotations {
		if ambiguous(v) {
			isAmbiguous = true
		}
	}
	if !isAmbiguous {
		return
	}
	seen := map[string]bool{}
	for i := 0; i < 400; i++ {
		res, errText := outcome()
		if errText != "" {
			res = `"error"`
		}
		if !seen[res] {
			seen[res] = true
			c.Variants = append(c.Variants, json.RawMessage(res))
		}
	}
}
