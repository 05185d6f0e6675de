package main

// Device injector inputs for the kinds of NRI v0.10-v0.12 (network
// devices, scheduling policy, sysctls, memory policy): random documents of
// their shapes (and wrong ones) in every YAML form gen.go writes, and
// written-out edge cases.

import (
	"math/rand"
	"strings"
)

var netDeviceFields = []field{{"hostIf", 'e'}, {"name", 's'}}
var schedulingFields = []field{{"policy", 'e'}, {"nice", 'n'}, {"priority", 'n'}, {"flags", 'G'},
	{"runtime", 'h'}, {"deadline", 'h'}, {"period", 'h'}}
var memoryPolicyFields = []field{{"mode", 'e'}, {"nodes", 's'}, {"flags", 'G'}}

// Valid names, then "|" and invalid ones (see gen.nameNode).
var hostIfs = []string{"ens2.100", "eth1", "dummy0", "nri-dummy0", "enp3s0f1", "eth1", "|", "", "Eth1 "}
var schedPolicies = []string{"SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE",
	"SCHED_DEADLINE", "SCHED_NONE", "", "|", "sched_fifo", "FIFO", "SCHED_FOO", " SCHED_RR", "SCHED_FIFO\n"}
var schedFlags = []string{"SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN",
	"SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_UTIL_CLAMP_MIN", "SCHED_FLAG_UTIL_CLAMP_MAX",
	"|", "", "RESET_ON_FORK", "sched_flag_reclaim", "SCHED_FLAG_FOO"}
var mpolModes = []string{"MPOL_DEFAULT", "MPOL_PREFERRED", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_LOCAL",
	"MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE", "", "|", "mpol_bind", "INTERLEAVE", "MPOL_FOO"}
var mpolFlags = []string{"MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES", "MPOL_F_NUMA_BALANCING", "|", "",
	"STATIC_NODES", "mpol_f_static_nodes"}
var sysctlNames = []string{"net.ipv4.ip_unprivileged_port_start", "kernel.shmmni", "net.core.somaxconn",
	"kernel.msgmax", "net.ipv4.ip_forward", "fs.mqueue.msg_max", "net.ipv4.ping_group_range",
	"Net.IPv4.Ip_Forward", "kernel/shmmax", "x", "1", "true", "~"}
var sysctlValues = []string{"0", "1", "80", "1024", "8192", "0 2147483647", "1024 65535", "yes", "on", "0x10",
	"0777", "1_000", "1e3", "-1", "1.5", "~", "''", "\"\"", "null", "'0'", "[1]", "{a: 1}"}

// objectDocument makes a document of one mapping of fields (or, now and
// then, something else).
func (g *gen) objectDocument(fields []field) string {
	g.anchors, g.maps = nil, nil
	g.wild = g.chance(0.3)
	g.fields = fields
	top := g.anchorize(g.object(fields))
	if g.chance(0.08) {
		top = g.value('s')
	}
	if g.chance(0.02) {
		top = g.list(1, func() *ynode { return g.object(fields) })
	}
	if g.chance(0.3) {
		return g.wrap(g.flow(top, true))
	}
	return g.wrap(g.block(top, 0, false))
}

// sysctlDocument makes a mapping of sysctl names to values (or, now and
// then, something else).
func (g *gen) sysctlDocument() string {
	g.anchors, g.maps = nil, nil
	g.wild = g.chance(0.3)
	var fields []field
	for _, name := range sysctlNames {
		fields = append(fields, field{name, 's'})
	}
	g.fields = fields
	m := &ynode{kind: 'm'}
	for i := 0; i < 1+g.r.Intn(3); i++ {
		name := g.pick(sysctlNames...)
		if g.wild && g.chance(0.2) {
			name = g.key(name)
		}
		if strings.ContainsAny(name, "/~") || name == "true" || name == "1" {
			if g.chance(0.5) {
				name = g.quoteDouble(name)
			}
		}
		m.keys = append(m.keys, name)
		var v *ynode
		switch {
		case g.wild && g.chance(0.3):
			v = g.scalar('s')
		case g.chance(0.5):
			v = &ynode{kind: 'v', scalar: g.pick(sysctlValues...)}
		default:
			v = &ynode{kind: 'v', scalar: g.pick(goodNumbers...)}
			if v.scalar == "" {
				v.scalar = "~"
			}
		}
		m.vals = append(m.vals, v)
	}
	var top *ynode = g.anchorize(m)
	switch {
	case g.chance(0.04):
		top = g.list(2, func() *ynode { return g.scalar('s') })
	case g.chance(0.03):
		top = &ynode{kind: 'v', scalar: g.pick("~", "null", "{}", "[]", "x")}
	}
	if g.chance(0.3) {
		return g.wrap(g.flow(top, true))
	}
	return g.wrap(g.block(top, 0, false))
}

// linuxValue makes a value for annotation kind k of linuxKinds.
func (g *gen) linuxValue(k int) string {
	var val string
	switch k {
	case 0:
		g.names = hostIfs
		val = g.document(netDeviceFields, false)
	case 1:
		g.names, g.flagNames = schedPolicies, schedFlags
		val = g.objectDocument(schedulingFields)
	case 2:
		val = g.sysctlDocument()
	default:
		g.names, g.flagNames = mpolModes, mpolFlags
		val = g.objectDocument(memoryPolicyFields)
	}
	if g.chance(0.03) {
		val = ""
	}
	return val
}

// linuxCase is one device-injector input with annotations of the NRI
// v0.10-v0.12 kinds (and now and then one of the older kinds).
func linuxCase(r *rand.Rand) Case {
	g := &gen{r: r}
	ctr := g.pick("c0", "c1", "ctr")
	ann := map[string]string{}
	for i := 0; i < 1+g.r.Intn(2); i++ {
		k := g.r.Intn(len(linuxKinds))
		key := linuxKinds[k][g.r.Intn(2)]
		switch g.r.Intn(4) {
		case 0:
			key += "/container." + ctr
		case 1:
			key += "/container." + g.pick("c0", "c1", "other")
		case 2:
			key += "/pod"
		}
		ann[key] = g.linuxValue(k)
	}
	if g.chance(0.1) {
		g.names = nil
		ann["devices.noderesource.dev/pod"] = g.document(deviceFields, false)
	}
	c := Case{Plugin: "device-injector", Annotations: ann, Container: ctr}
	recordDevices(&c)
	return c
}

// recordDevices records what the Go device injector makes of a case, and
// the quirks of what it applied.
func recordDevices(c *Case) {
	quirks := map[string]bool{}
	record(c, func() (interface{}, error) { return runDeviceInjector(c.Annotations, c.Container, quirks) })
	c.Quirks = sortedQuirks(quirks)
}

// linuxEdges emits the written-out device-injector cases of the NRI
// v0.10-v0.12 kinds and returns their number.
func linuxEdges(emit func(Case)) int {
	const (
		nd = "network-devices.noderesource.dev"
		sp = "scheduling-policy.noderesource.dev"
		sc = "sysctl.noderesource.dev"
		mp = "memory-policy.noderesource.dev"
	)
	edges := []map[string]string{
		// Network devices.
		{nd + "/container.c0": "- hostIf: ens2.100\n  name: netdev0\n- hostIf: ens2.101\n"},
		{nd + "/pod": "- name: netdev0\n"},
		{nd + "/pod": "- hostIf: ''\n  name: netdev0\n"},
		{nd + "/pod": "- hostIf: eth1\n  name: a\n- hostIf: eth1\n  name: b\n"},
		{nd + "/pod": "- {HOSTIF: eth1, Name: x}\n"},
		{nd + "/pod": "- hostif: eth1\n  hostIf: eth2\n"},
		{nd + "/pod": "- hostIf: 100\n  name: 0x10\n"},
		{nd + "/pod": "- ~\n"},
		{nd + "/pod": "[]"},
		{nd + "/pod": "~"},
		{nd + "/pod": ""},
		{nd + "/pod": "hostIf: eth1\n"},
		{nd + "/pod": "- hostIf: [eth1]\n"},
		{"network-devices.nri.io/container.c0": "- hostIf: old\n", nd + "/pod": "- hostIf: new\n"},
		{"network-devices.nri.io": "- hostIf: bare\n"},
		// Scheduling policy.
		{sp + "/container.c0": "policy: SCHED_FIFO\npriority: 10\nflags: [SCHED_FLAG_RESET_ON_FORK]\n"},
		{sp + "/pod": "policy: SCHED_DEADLINE\nruntime: 10000000\ndeadline: 20000000\nperiod: 20000000\nflags: [SCHED_FLAG_RECLAIM, SCHED_FLAG_DL_OVERRUN]\n"},
		{sp + "/pod": "policy: SCHED_OTHER\nnice: -20\n"},
		{sp + "/pod": "policy: SCHED_FOO\n"},
		{sp + "/pod": "policy: sched_fifo\n"},
		{sp + "/pod": "policy: SCHED_FIFO\nflags: [SCHED_FLAG_FOO]\n"},
		{sp + "/pod": "policy: SCHED_FIFO\nflags: ['']\n"},
		{sp + "/pod": "policy: SCHED_FIFO\nflags: SCHED_FLAG_RECLAIM\n"},
		{sp + "/pod": "policy: SCHED_NONE\n"},
		{sp + "/pod": "policy: ~\n"},
		{sp + "/pod": "{}"},
		{sp + "/pod": "~"},
		{sp + "/pod": "nice: 2147483648\n"},
		{sp + "/pod": "runtime: -1\n"},
		{sp + "/pod": "runtime: 18446744073709551615\npolicy: SCHED_DEADLINE\n"},
		{sp + "/pod": "priority: 0x63\npolicy: SCHED_RR\n"},
		{sp + "/pod": "- policy: SCHED_FIFO\n"},
		// Sysctls.
		{sc + "/container.c0": "net.ipv4.ip_unprivileged_port_start: 80\nkernel.shmmni: \"8192\"\n"},
		{sc + "/pod": "net.ipv4.ip_unprivileged_port_start: ~\n"},
		{sc + "/pod": "net.ipv4.ip_unprivileged_port_start: ''\n"},
		{sc + "/pod": "'': 1\n"},
		{sc + "/pod": "net.ipv4.ping_group_range: 0 2147483647\n"},
		{sc + "/pod": "kernel.shmmni: 0x10\nkernel.msgmax: 0777\nnet.core.somaxconn: 1_000\n"},
		{sc + "/pod": "net.ipv4.ip_forward: yes\n"},
		{sc + "/pod": "net.ipv4.ip_forward: 1.0\n"},
		{sc + "/pod": "a: 1\nA: 2\na: 3\n"},
		{sc + "/pod": "a: [1]\n"},
		{sc + "/pod": "a: {b: 1}\n"},
		{sc + "/pod": "- a\n"},
		{sc + "/pod": "~"},
		{sc + "/pod": "{}"},
		{sc + "/pod": "1: 2\ntrue: false\n"},
		{"sysctl.nri.io/pod": "kernel.shmmni: 1\n", sc: "kernel.shmmni: 2\n"},
		// Memory policy.
		{mp + "/container.c0": "mode: MPOL_PREFERRED\nnodes: \"1,2\"\nflags: [ MPOL_F_STATIC_NODES ]\n"},
		{mp + "/pod": "mode: MPOL_INTERLEAVE\nnodes: 0-3\n"},
		{mp + "/pod": "mode: MPOL_BIND\nnodes: 1\n"},
		{mp + "/pod": "mode: MPOL_BIND\nnodes: 1,2\n"},
		{mp + "/pod": "mode: MPOL_LOCAL\n"},
		{mp + "/pod": "{}"},
		{mp + "/pod": "~"},
		{mp + "/pod": "nodes: 0\n"},
		{mp + "/pod": "mode: MPOL_FOO\n"},
		{mp + "/pod": "mode: mpol_bind\n"},
		{mp + "/pod": "mode: MPOL_BIND\nflags: [MPOL_F_FOO]\n"},
		{mp + "/pod": "mode: MPOL_BIND\nflags: []\n"},
		{mp + "/pod": "mode: MPOL_BIND\nflags: ~\n"},
		{mp + "/pod": "mode: 1\n"},
		{mp + "/pod": "MODE: MPOL_BIND\nNodes: 0\n"},
		// Several kinds.
		{nd + "/pod": "- hostIf: eth1\n", sp + "/pod": "policy: SCHED_RR\npriority: 1\n", sc + "/pod": "kernel.shmmni: 1\n", mp + "/pod": "mode: MPOL_BIND\nnodes: 0\n"},
		{nd + "/pod": "- name: x\n", mp + "/pod": "mode: [\n"},
	}
	for i, ann := range edges {
		c := Case{Plugin: "device-injector", ID: i, Annotations: ann, Container: "c0", Edge: true}
		recordDevices(&c)
		emit(c)
	}
	return len(edges)
}
