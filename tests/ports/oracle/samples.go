package main

// The other sample plugins of containerd/nri, as the ports in examples/
// mirror them: network-device-injector (its annotation, read with
// sigs.k8s.io/yaml, and its addresses, read with net.ParseIP), rdt (its
// annotations, read with strconv.ParseBool and strings.Split, into the
// adjustment of containerd/nri v0.12.5), writable-cgroups (the host's mount
// table, read with moby/sys/mountinfo, and the mount it rewrites),
// network-logger (the lines it logs) and differ (the changes
// r3labs/diff/v3 finds between two pods or containers of containerd/nri
// v0.12.5).
//
// Each case carries its input in Annotations and Container, or as JSON in
// Text, with Target naming the kind of case within the plugin.

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	api "github.com/containerd/nri/pkg/api"
	"github.com/moby/sys/mountinfo"
	"github.com/r3labs/diff/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"
)

// samples writes the cases of every plugin here, each plugin from a random
// source of its own (seed, seed+1...), and reports how many.
func samples(seed int64, cases int, emit func(Case)) {
	counts := map[string]int{}
	for k, gen := range []func(*rand.Rand) Case{netdeviceCase, rdtCase, cgroupsCase, networkLoggerCase, differCase} {
		r := rand.New(rand.NewSource(seed + int64(k)))
		for i := 0; i < cases; i++ {
			c := gen(r)
			c.ID = i
			emit(c)
			counts[c.Plugin+"/"+c.Target]++
		}
	}
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	slices.Sort(names)
	var parts []string
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("%d %s", counts[name], name))
	}
	fmt.Fprintf(os.Stderr, "oracle: samples: %s\n", strings.Join(parts, ", "))
}

// ---------------------------------------------------------------------------
// network-device-injector

type netdevice struct {
	Name    string `json:"name"`
	NewName string `json:"new_name"`
	Address string `json:"address"`
	Prefix  int    `json:"prefix"`
	MTU     int    `json:"mtu"`
}

var netdeviceKeys = []string{
	"netdevice.noderesource.dev/pod", "netdevices.nri.containerd.io/pod",
	"netdevice.noderesource.dev", "netdevices.nri.containerd.io",
}

// parseNetdevices is what the Go plugin makes of a pod's annotations: the
// first key present, decoded; each address checked. (Its defaulting of
// new_name and prefix changes copies, so it has no effect: left out.)
func parseNetdevices(annotations map[string]string) ([]netdevice, error) {
	for _, key := range netdeviceKeys {
		value, ok := annotations[key]
		if !ok {
			continue
		}
		var devices []netdevice
		if err := yaml.Unmarshal([]byte(value), &devices); err != nil {
			return nil, fmt.Errorf("invalid device annotation %q: %w", key, err)
		}
		for _, d := range devices {
			if d.Address != "" && net.ParseIP(d.Address) == nil {
				return nil, fmt.Errorf("error parsing address %s", d.Address)
			}
		}
		return devices, nil
	}
	return nil, nil
}

// Addresses: valid ones, then after "|" invalid ones.
var ipWords = []string{
	"192.168.2.2", "10.0.0.1", "0.0.0.0", "255.255.255.255", "::", "::1", "fd00::2", "fe80::1",
	"2001:db8::1", "::ffff:10.1.2.3", "::10.1.2.3", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "1::",
	"FD00::2", "0:0:0:0:0:0:0:1", "::ffff:ffff:ffff",
	"|",
	"300.1.1.1", "010.1.1.1", "1.2.3", "1.2.3.4.5", "fe80::1%eth0", "::ffff:01.2.3.4",
	"1:2:3:4:5:6:7:8:9", "12345::", "1::2::3", " 1.2.3.4", "1.2.3.4 ", "localhost", "0x7f.0.0.1",
	"1.2.3.04", "::ffff:1.2.3", "[::1]", "1.2.3.4/24", ":::", "1:2:3:4:5:6:7:1.2.3.4", "fe80::1%",
	"00.1.1.1", "1.02.3.4", "1.2.3.", ".1.2.3", "1:2", "g::1", "::1.2.3.4.5",
}

var netdeviceFields = []field{{"name", 's'}, {"new_name", 's'}, {"address", 'e'}, {"prefix", 'n'}, {"mtu", 'n'}}

// randomIP makes a string shaped like an address, often a little wrong.
func randomIP(r *rand.Rand) string {
	var b strings.Builder
	if r.Intn(2) == 0 {
		n := 4
		if r.Intn(8) == 0 {
			n = 3 + r.Intn(3)
		}
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte('.')
			}
			v := r.Intn(260)
			switch r.Intn(12) {
			case 0:
				fmt.Fprintf(&b, "0%d", v)
			case 1:
				fmt.Fprintf(&b, "%d", 250+r.Intn(10))
			case 2:
				// empty field
			default:
				fmt.Fprintf(&b, "%d", v)
			}
		}
	} else {
		groups := 1 + r.Intn(9)
		ellipsis := -1
		if r.Intn(2) == 0 {
			ellipsis = r.Intn(groups + 1)
		}
		for i := 0; i < groups; i++ {
			if i == ellipsis {
				b.WriteString("::")
			} else if i > 0 {
				b.WriteByte(':')
			}
			digits := 1 + r.Intn(4)
			if r.Intn(15) == 0 {
				digits = 5
			}
			for j := 0; j < digits; j++ {
				b.WriteByte("0123456789abcdefABCDEF"[r.Intn(22)])
			}
		}
		if ellipsis == groups {
			b.WriteString("::")
		}
		if r.Intn(6) == 0 {
			fmt.Fprintf(&b, ":%d.%d.%d.%d", r.Intn(256), r.Intn(256), r.Intn(256), r.Intn(300))
		}
		if r.Intn(12) == 0 {
			b.WriteString("%eth0")
		}
	}
	s := b.String()
	if r.Intn(20) == 0 {
		s = " " + s
	}
	return s
}

func netdeviceCase(r *rand.Rand) Case {
	g := &gen{r: r, names: ipWords}
	ann := map[string]string{}
	if g.chance(0.2) {
		// An address alone, of every shape.
		addr := randomIP(r)
		ann[g.pick(netdeviceKeys...)] = "- name: d0\n  address: '" + strings.ReplaceAll(addr, "'", "''") + "'\n"
	} else {
		for i, n := 0, 1+r.Intn(2); i < n; i++ {
			key := g.pick(append(netdeviceKeys,
				"netdevice.noderesource.dev/container.c0", "netdevices.noderesource.dev/pod",
				"netdevice.nri.io/pod")...)
			ann[key] = g.document(netdeviceFields, false)
		}
	}
	c := Case{Plugin: "network-device-injector", Target: "annotation", Annotations: ann}
	record(&c, func() (interface{}, error) { return parseNetdevices(ann) })
	if devices, err := parseNetdevices(ann); err == nil && c.Variants == nil {
		// What the Go plugin means its defaults to be (they change copies):
		// new_name from name, the prefix from the address's family.
		for i := range devices {
			d := &devices[i]
			if d.NewName == "" {
				d.NewName = d.Name
			}
			if d.Address != "" && d.Prefix == 0 {
				if net.ParseIP(d.Address).To4() == nil {
					d.Prefix = 128
				} else {
					d.Prefix = 32
				}
			}
		}
		text, _ := json.Marshal(devices)
		c.Text = string(text)
	}
	return c
}

// ---------------------------------------------------------------------------
// rdt

type rdtResult struct {
	ClosID           *string  `json:"closid"`
	Schemata         []string `json:"schemata"`
	EnableMonitoring *bool    `json:"enablemonitoring"`
}

// runRdt is the Go plugin's CreateContainer for container ctr.
func runRdt(annotations map[string]string, ctr string) (interface{}, error) {
	adjust := &api.ContainerAdjustment{}
	suffix := ".rdt.noderesource.dev/container." + ctr
	for key, value := range annotations {
		if !strings.HasSuffix(key, suffix) {
			continue
		}
		switch strings.TrimSuffix(key, suffix) {
		case "closid":
			adjust.SetLinuxRDTClosID(value)
		case "schemata":
			adjust.SetLinuxRDTSchemata(strings.Split(value, ","))
		case "enablemonitoring":
			enable, err := strconv.ParseBool(value)
			if err != nil {
				return nil, err
			}
			adjust.SetLinuxRDTEnableMonitoring(enable)
		}
	}
	rdt := adjust.GetLinux().GetRdt()
	if rdt == nil {
		return nil, nil
	}
	res := rdtResult{Schemata: rdt.GetSchemata().GetValue()}
	if rdt.ClosId != nil {
		v := rdt.ClosId.GetValue()
		res.ClosID = &v
	}
	if rdt.EnableMonitoring != nil {
		v := rdt.EnableMonitoring.GetValue()
		res.EnableMonitoring = &v
	}
	return res, nil
}

var boolWords = []string{"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False",
	"yes", "no", "on", "tRUE", "", " true", "true ", "2", "-1", "t\n", "FaLsE", "\u00a01", "é"}
var schemataWords = []string{"L3:0=f,MB:0=50", "", ",", "a,,b", "L3:0=ff", "MB:0=100;L3:1=f", "é,设", " x , y ", "L3:0=f\nMB:0=1"}
var closWords = []string{"gold", "", "clos-1", "a b", "é", "\t", "x\u0000y", "/", "..", "\"q\""}

func rdtCase(r *rand.Rand) Case {
	g := &gen{r: r}
	ctr := g.pick("c0", "c1", "a.b", "")
	ann := map[string]string{}
	for i, n := 0, r.Intn(5); i < n; i++ {
		field := g.pick("closid", "schemata", "enablemonitoring", "enablemonitoring", "unknown", "CLOSID", "", "x.closid")
		target := g.pick(ctr, ctr, ctr, "other", ctr+"x")
		key := field + ".rdt.noderesource.dev/container." + target
		if g.chance(0.05) {
			key = g.pick("closid.rdt.noderesource.dev/pod", "closid.rdt.nri.io/container."+ctr, "closid.rdt.noderesource.dev/container")
		}
		var value string
		switch field {
		case "schemata":
			value = g.pick(schemataWords...)
		case "enablemonitoring":
			value = g.pick(boolWords...)
		default:
			value = g.pick(closWords...)
		}
		ann[key] = value
	}
	c := Case{Plugin: "rdt", Target: "annotation", Annotations: ann, Container: ctr}
	record(&c, func() (interface{}, error) { return runRdt(ann, ctr) })
	return c
}

// ---------------------------------------------------------------------------
// writable-cgroups

// hostNsDelegate is the Go plugin's checkHostNsDelegate on a mount table's
// text.
func hostNsDelegate(text string) (bool, error) {
	f, err := os.CreateTemp("", "nri-ports-mountinfo-")
	if err != nil {
		panic(err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(text); err != nil {
		panic(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		panic(err)
	}
	defer f.Close()
	mounts, err := mountinfo.GetMountsFromReader(f, func(info *mountinfo.Info) (skip, stop bool) {
		if info.FSType != "cgroup2" {
			return true, false
		}
		if info.Mountpoint == "/sys/fs/cgroup" || info.Mountpoint == "/sys/fs/cgroup/unified" {
			return false, true
		}
		return true, false
	})
	if err != nil {
		return false, fmt.Errorf("error scanning mount file: %w", err)
	}
	if len(mounts) == 0 {
		return false, nil
	}
	return slices.Contains(strings.Split(mounts[0].VFSOptions, ","), "nsdelegate"), nil
}

type cgroupsInput struct {
	Mounts     []outMount `json:"mounts"`
	NsDelegate bool       `json:"ns_delegate"`
}

type cgroupsResult struct {
	Mounts []outMount `json:"mounts"`
}

// writableCgroups is the Go plugin's CreateContainer: nil for no change.
func writableCgroups(annotations map[string]string, ctr string, in cgroupsInput) (interface{}, error) {
	const key = "cgroups.noderesource.dev/writable"
	enabled := false
	if v, ok := annotations[key+".container."+ctr]; ok {
		enabled = v == "true"
	} else if v, ok := annotations[key]; ok {
		enabled = v == "true"
	}
	if !enabled || !in.NsDelegate {
		return nil, nil
	}
	var old *outMount
	for i := range in.Mounts {
		if in.Mounts[i].Destination == "/sys/fs/cgroup" {
			old = &in.Mounts[i]
			break
		}
	}
	if old == nil {
		return nil, fmt.Errorf("no %s mount found to modify, this is unexpected", "/sys/fs/cgroup")
	}
	options := make([]string, 0, len(old.Options))
	hasRW, changed := false, false
	for _, o := range old.Options {
		switch o {
		case "rw":
			hasRW = true
			options = append(options, o)
		case "ro":
			changed = true
		default:
			options = append(options, o)
		}
	}
	if !hasRW {
		options = append(options, "rw")
		changed = true
	}
	if !changed {
		return nil, nil
	}
	adjust := &api.ContainerAdjustment{}
	adjust.AddMount(&api.Mount{Destination: old.Destination, Type: old.Type, Source: old.Source, Options: options})
	adjust.RemoveMount(old.Destination)
	res := cgroupsResult{}
	for _, m := range adjust.GetMounts() {
		res.Mounts = append(res.Mounts, outMount{Source: m.Source, Destination: m.Destination, Type: m.Type, Options: m.Options})
	}
	return res, nil
}

var mountPoints = []string{"/sys/fs/cgroup", "/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory",
	"/run", "/", "/sys/fs/\\143group", "/sys/fs/cgroup\\040x", "/sys/fs/cgroup/", "/sys/fs/cgroup\\0"}
var fsTypes = []string{"cgroup2", "cgroup2", "cgroup", "tmpfs", "cgroup\\062", "cgroup2\\040", "Cgroup2", "cgroup2.x"}
var superOptions = []string{"rw", "rw,nsdelegate", "nsdelegate", "rw,nsdelegate,memory_recursiveprot",
	"rw,nsdelegatex", "NSDELEGATE", "", "rw,,nsdelegate", "nsdelegate,rw"}

func mountLine(g *gen) string {
	fields := []string{
		fmt.Sprint(g.r.Intn(100)), fmt.Sprint(g.r.Intn(100)),
		g.pick("0:28", "98:0", "0:38", "34", "1:2:3", ":", "a:b"),
		g.pick("/", "/", "/sub", "/a\\040b", "/bad\\x12", "\\1"),
		g.pick(mountPoints...),
		g.pick("rw,relatime", "rw,nosuid,nodev,noexec,relatime", "ro"),
	}
	for i, n := 0, g.r.Intn(3); i < n; i++ {
		fields = append(fields, g.pick("shared:9", "master:2", "propagate_from:1", "unbindable"))
	}
	fields = append(fields, "-", g.pick(fsTypes...), g.pick("cgroup2", "cgroup", "tmpfs", "none", "/dev/x\\040y", "bad\\9"), g.pick(superOptions...))
	switch g.r.Intn(25) {
	case 0:
		fields = fields[:len(fields)-1-g.r.Intn(3)]
	case 1:
		i := slices.Index(fields, "-")
		fields[i] = g.pick("--", "", "x")
	case 2:
		fields = append(fields, g.pick("extra", "-"))
	case 3:
		i := g.r.Intn(len(fields))
		fields[i] = fields[i] + " "
	case 4:
		return g.pick("", "garbage", "\t", "1 2 3 4 5 6 7 8 9 10", "é 设 - cgroup2 x nsdelegate")
	}
	return strings.Join(fields, " ")
}

func cgroupsCase(r *rand.Rand) Case {
	g := &gen{r: r}
	if g.chance(0.5) {
		var b strings.Builder
		for i, n := 0, g.r.Intn(6); i < n; i++ {
			b.WriteString(mountLine(g))
			switch g.r.Intn(10) {
			case 0:
				b.WriteString("\r\n")
			case 1:
				if i == n-1 {
					continue
				}
				b.WriteString("\n")
			default:
				b.WriteString("\n")
			}
		}
		if g.chance(0.01) {
			b.WriteString("1 2 3:4 / /" + strings.Repeat("a", 65530+g.r.Intn(10)) + " rw - cgroup2 x nsdelegate\n")
		}
		text := b.String()
		c := Case{Plugin: "writable-cgroups", Target: "mountinfo", Text: text}
		ok, err := hostNsDelegate(text)
		if err != nil {
			c.Error = err.Error()
		} else {
			c.Result, _ = json.Marshal(ok)
		}
		return c
	}
	ctr := g.pick("c0", "c1")
	ann := map[string]string{}
	for i, n := 0, g.r.Intn(3); i < n; i++ {
		key := g.pick("cgroups.noderesource.dev/writable", "cgroups.noderesource.dev/writable.container."+ctr,
			"cgroups.noderesource.dev/writable.container.other", "cgroups.noderesource.dev/writable/container."+ctr)
		ann[key] = g.pick("true", "true", "false", "True", "", "yes", "1")
	}
	in := cgroupsInput{NsDelegate: g.chance(0.8)}
	for i, n := 0, g.r.Intn(4); i < n; i++ {
		m := outMount{
			Destination: g.pick("/sys/fs/cgroup", "/sys/fs/cgroup", "/proc", "/sys/fs/cgroup/", "/dev"),
			Type:        g.pick("cgroup", "cgroup2", "bind", ""),
			Source:      g.pick("cgroup", "/sys/fs/cgroup", ""),
		}
		for j, k := 0, g.r.Intn(6); j < k; j++ {
			m.Options = append(m.Options, g.pick("ro", "rw", "nosuid", "noexec", "nodev", "relatime", "nsdelegate", "RO", "ro"))
		}
		in.Mounts = append(in.Mounts, m)
	}
	text, _ := json.Marshal(in)
	c := Case{Plugin: "writable-cgroups", Target: "create", Annotations: ann, Container: ctr, Text: string(text)}
	res, err := writableCgroups(ann, ctr, in)
	if err != nil {
		c.Error = err.Error()
	} else {
		c.Result, _ = json.Marshal(res)
	}
	return c
}

// ---------------------------------------------------------------------------
// network-logger

type loggerInput struct {
	Namespace  string              `json:"namespace"`
	Name       string              `json:"name"`
	Namespaces []map[string]string `json:"namespaces"`
	IPs        []string            `json:"ips"`
}

func networkLoggerCase(r *rand.Rand) Case {
	g := &gen{r: r}
	in := loggerInput{Namespace: g.pick("default", "kube-system", "", "é"), Name: g.pick("web", "a b", "")}
	if g.chance(0.8) {
		in.Namespaces = []map[string]string{}
		for i, n := 0, g.r.Intn(5); i < n; i++ {
			in.Namespaces = append(in.Namespaces, map[string]string{
				"type": g.pick("network", "ipc", "uts", "pid", "Network", ""),
				"path": g.pick("/var/run/netns/cni-1", "", "/proc/1/ns/net", "a b"),
			})
		}
	}
	for i, n := 0, g.r.Intn(4); i < n; i++ {
		in.IPs = append(in.IPs, g.pick("10.0.0.1", "fd00::1", "", "a b", "[x]"))
	}
	pod := &api.PodSandbox{Namespace: in.Namespace, Name: in.Name, Ips: in.IPs}
	if in.Namespaces != nil {
		pod.Linux = &api.LinuxPodSandbox{}
		for _, ns := range in.Namespaces {
			pod.Linux.Namespaces = append(pod.Linux.Namespaces, &api.LinuxNamespace{Type: ns["type"], Path: ns["path"]})
		}
	}
	netns := "<host-network>"
	for _, ns := range pod.Linux.GetNamespaces() {
		if ns.Type == "network" {
			netns = ns.Path
			break
		}
	}
	lines := []string{
		fmt.Sprintf("pod %s/%s: namespace=%s ips=%v", pod.GetNamespace(), pod.GetName(), netns, pod.GetIps()),
		fmt.Sprintf("Started pod %s/%s: namespace=%s ips=%v", pod.GetNamespace(), pod.GetName(), netns, pod.GetIps()),
		fmt.Sprintf("Stopped pod %s/%s: ips=%v", pod.GetNamespace(), pod.GetName(), pod.GetIps()),
		fmt.Sprintf("Removed pod %s/%s: ips=%v", pod.GetNamespace(), pod.GetName(), pod.GetIps()),
	}
	text, _ := json.Marshal(in)
	c := Case{Plugin: "network-logger", Target: "pod", Text: string(text)}
	c.Result, _ = json.Marshal(lines)
	return c
}

// ---------------------------------------------------------------------------
// differ

var wordPool = []string{"a", "b", "web", "", "x y", "/dev/null", "é", "\"q\"", "a\nb", "\u0085", "\x01", "10.0.0.1", "0-3"}

// randomValue is a value for field fd (or, with key, its map key).
func randomValue(r *rand.Rand, fd protoreflect.FieldDescriptor, newMessage func() protoreflect.Message, depth int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(wordPool[r.Intn(len(wordPool))])
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.Intn(2) == 0)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(r.Intn(5) - 1))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(r.Intn(5)-1) * int64(1+r.Intn(3)*1000000000))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(r.Intn(5)))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(r.Intn(5)) << uint(r.Intn(40)))
	case protoreflect.EnumKind:
		values := fd.Enum().Values()
		n := values.Get(r.Intn(values.Len())).Number()
		if r.Intn(30) == 0 {
			n = 77
		}
		return protoreflect.ValueOfEnum(n)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		m := newMessage()
		if depth < 6 {
			fill(r, m, depth+1)
		}
		return protoreflect.ValueOfMessage(m)
	}
	panic(fmt.Sprintf("field %s of kind %s", fd.FullName(), fd.Kind()))
}

// fill sets some fields of m, at random.
func fill(r *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		if r.Intn(3) != 0 {
			continue
		}
		setRandom(r, m, fields.Get(i), depth)
	}
}

func setRandom(r *rand.Rand, m protoreflect.Message, fd protoreflect.FieldDescriptor, depth int) {
	switch {
	case fd.IsMap():
		mp := m.Mutable(fd).Map()
		for j, n := 0, 1+r.Intn(3); j < n; j++ {
			k := randomValue(r, fd.MapKey(), nil, depth)
			mp.Set(k.MapKey(), randomValue(r, fd.MapValue(), mp.NewValue().Message, depth))
		}
	case fd.IsList():
		l := m.Mutable(fd).List()
		for j, n := 0, 1+r.Intn(3); j < n; j++ {
			l.Append(randomValue(r, fd, func() protoreflect.Message { return l.NewElement().Message() }, depth))
		}
	case fd.Message() != nil:
		if depth < 6 {
			m.Set(fd, randomValue(r, fd, func() protoreflect.Message { return m.NewField(fd).Message() }, depth))
		}
	default:
		m.Set(fd, randomValue(r, fd, nil, depth))
	}
}

// mutate changes one thing somewhere in m.
func mutate(r *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	fd := fields.Get(r.Intn(fields.Len()))
	switch {
	case fd.IsMap():
		mp := m.Mutable(fd).Map()
		var keys []protoreflect.MapKey
		mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
			keys = append(keys, k)
			return true
		})
		slices.SortFunc(keys, func(a, b protoreflect.MapKey) int { return strings.Compare(a.String(), b.String()) })
		switch {
		case len(keys) > 0 && r.Intn(3) == 0:
			mp.Clear(keys[r.Intn(len(keys))])
		case len(keys) > 0 && r.Intn(2) == 0:
			mp.Set(keys[r.Intn(len(keys))], randomValue(r, fd.MapValue(), mp.NewValue().Message, depth))
		default:
			k := randomValue(r, fd.MapKey(), nil, depth)
			mp.Set(k.MapKey(), randomValue(r, fd.MapValue(), mp.NewValue().Message, depth))
		}
	case fd.IsList():
		l := m.Mutable(fd).List()
		n := l.Len()
		newElem := func() protoreflect.Message { return l.NewElement().Message() }
		switch op := r.Intn(6); {
		case op == 0 || n == 0:
			l.Append(randomValue(r, fd, newElem, depth))
		case op == 1:
			// Remove element i.
			i := r.Intn(n)
			var kept []protoreflect.Value
			for j := 0; j < n; j++ {
				if j != i {
					kept = append(kept, l.Get(j))
				}
			}
			l.Truncate(0)
			for _, v := range kept {
				l.Append(v)
			}
		case op == 2:
			l.Set(r.Intn(n), randomValue(r, fd, newElem, depth))
		case op == 3 && n > 1:
			i, j := r.Intn(n), r.Intn(n)
			vi, vj := l.Get(i), l.Get(j)
			l.Set(i, vj)
			l.Set(j, vi)
		case op == 4 && fd.Message() != nil:
			mutate(r, l.Get(r.Intn(n)).Message(), depth+1)
		default:
			l.Truncate(r.Intn(n))
		}
	case fd.Message() != nil:
		switch {
		case m.Has(fd) && r.Intn(3) != 0 && depth < 8:
			mutate(r, m.Mutable(fd).Message(), depth+1)
		case m.Has(fd):
			m.Clear(fd)
		default:
			setRandom(r, m, fd, depth)
		}
	default:
		if m.Has(fd) && r.Intn(4) == 0 {
			m.Clear(fd)
		} else {
			m.Set(fd, randomValue(r, fd, nil, depth))
		}
	}
}

type differInput struct {
	A string `json:"a"`
	B string `json:"b"`
}

// changelog is the differ's line for each change r3labs/diff finds.
func changelog(a, b interface{}) ([]string, error) {
	cl, err := diff.Diff(a, b)
	if err != nil {
		return nil, err
	}
	lines := []string{}
	for _, c := range cl {
		lines = append(lines, fmt.Sprintf("%s: %v: From: %v -> To: %v", c.Type, c.Path, c.From, c.To))
	}
	return lines, nil
}

func differCase(r *rand.Rand) Case {
	pod := r.Intn(3) == 0
	var a, b proto.Message
	if pod {
		a, b = &api.PodSandbox{}, &api.PodSandbox{}
	} else {
		a, b = &api.Container{}, &api.Container{}
	}
	fill(r, a.ProtoReflect(), 0)
	proto.Merge(b, a)
	for i, n := 0, r.Intn(5); i < n; i++ {
		mutate(r, b.ProtoReflect(), 0)
	}
	ab, err := proto.Marshal(a)
	if err != nil {
		panic(err)
	}
	bb, err := proto.Marshal(b)
	if err != nil {
		panic(err)
	}
	// What the differ gets: messages decoded from the wire.
	var lines []string
	if pod {
		x, y := &api.PodSandbox{}, &api.PodSandbox{}
		must(proto.Unmarshal(ab, x), proto.Unmarshal(bb, y))
		lines, err = changelog(*x, *y)
	} else {
		x, y := &api.Container{}, &api.Container{}
		must(proto.Unmarshal(ab, x), proto.Unmarshal(bb, y))
		lines, err = changelog(*x, *y)
	}
	target := "container"
	if pod {
		target = "pod"
	}
	text, _ := json.Marshal(differInput{hex.EncodeToString(ab), hex.EncodeToString(bb)})
	c := Case{Plugin: "differ", Target: target, Text: string(text)}
	if err != nil {
		c.Error = err.Error()
	} else {
		c.Result, _ = json.Marshal(lines)
	}
	return c
}

func must(errs ...error) {
	for _, err := range errs {
		if err != nil {
			panic(err)
		}
	}
}
