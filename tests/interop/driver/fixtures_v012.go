package main

// Fixtures for what NRI added since v0.9: containers with every new field
// filled, the interop/adjust=v012 adjustment, and the contract's Fields
// line. They are written once, in the field names of the v0.12.5 API, and
// read into the linked API's types dropping what it does not know: a v0.11
// runtime cannot send a container image, a v0.10 one neither the image nor
// the user, sysctls, net devices, scheduler or RDT, a v0.9 one none of the
// new fields, and a runtime passes through only the adjustment fields its
// API knows.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fromText reads textproto (v0.12.5 field names) into m, dropping the
// fields the linked API does not know. A syntax error is a harness bug.
func fromText(m proto.Message, text string) {
	if err := (prototext.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(text), m); err != nil {
		panic(fmt.Sprintf("harness bug: fixture text: %v", err))
	}
}

// mergeText merges textproto (v0.12.5 field names) into m, dropping what
// the linked API does not know.
func mergeText(m proto.Message, text string) {
	part := m.ProtoReflect().New().Interface()
	fromText(part, text)
	proto.Merge(m, part)
}

// newContainerFields is every Container field added since v0.9, filled.
// No value holds a space (the Fields line is space-separated).
const newContainerFields = `
created_at: 1700000000000000001
started_at: 1700000000500000002
finished_at: 1700000100000000003
exit_code: 137
status_reason: "OOMKilled"
status_message: "interop:out-of-memory"
CDI_devices { name: "vendor.example/gpu=0" }
CDI_devices { name: "vendor.example/gpu=1" }
user { uid: 1000 gid: 2000 additional_gids: [3000, 4000] }
image { name: "registry.example/interop:v1" digest: "sha256:0123" config_digest: "sha256:4567" }
linux {
  io_priority { class: IOPRIO_CLASS_RT priority: 3 }
  seccomp_profile { profile_type: LOCALHOST localhost_ref: "profiles/interop.json" }
  seccomp_policy {
    default_action: "SCMP_ACT_ERRNO"
    default_errno { value: 38 }
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]
    flags: "SECCOMP_FILTER_FLAG_LOG"
    syscalls { names: ["read", "write"] action: "SCMP_ACT_ALLOW" }
    syscalls {
      names: "personality" action: "SCMP_ACT_ALLOW"
      args { index: 0 value: 8 op: "SCMP_CMP_EQ" }
    }
  }
  sysctl { key: "net.ipv4.ip_forward" value: "1" }
  sysctl { key: "kernel.shm_rmid_forced" value: "1" }
  net_devices { key: "eth1" value { name: "net1" } }
  net_devices { key: "eth2" value { name: "net2" } }
  scheduler {
    policy: SCHED_FIFO nice: -5 priority: 10
    flags: [SCHED_FLAG_RESET_ON_FORK, SCHED_FLAG_KEEP_POLICY]
    runtime: 100 deadline: 200 period: 300
  }
  rdt {
    clos_id { value: "gold" }
    schemata { value: ["L3:0=f", "MB:0=50"] }
    enable_monitoring { value: true }
  }
}
`

// withNewFields fills every Container field added since v0.9 that the
// linked API knows.
func withNewFields(c *api.Container) *api.Container {
	mergeText(c, newContainerFields)
	return c
}

// v012AdjustmentText is the contract's interop/adjust=v012 adjustment with
// tag T, as the adaptation merges it (v0.12.5 names).
func v012AdjustmentText(t string) string {
	return strings.ReplaceAll(`
args: ["/bin/{T}", "--interop"]
linux {
  io_priority { class: IOPRIO_CLASS_BE priority: 4 }
  seccomp_policy {
    default_action: "SCMP_ACT_ALLOW"
    architectures: "SCMP_ARCH_X86_64"
    syscalls { names: "{T}_call" action: "SCMP_ACT_ERRNO" errno_ret { value: 1 } }
  }
  namespaces { type: "network" path: "/var/run/netns/{T}" }
  sysctl { key: "net.core.somaxconn" value: "1024" }
  net_devices { key: "{T}-host0" value { name: "{T}-eth0" } }
  scheduler { policy: SCHED_BATCH nice: 5 }
  rdt {
    clos_id { value: "{T}-clos" }
    schemata { value: "L3:0=ff" }
    enable_monitoring { value: true }
  }
  memory_policy { mode: MPOL_BIND nodes: "0" flags: MPOL_F_STATIC_NODES }
}
`, "{T}", t)
}

// expectedV012Adjustment is what CreateContainer hands back for
// interop/adjust=v012 with tag t: the empty reply's skeleton with the parts
// of the adjustment the linked API knows (none on v0.9).
//
// omit lists the parts (the linux field names) the plugin was asked to
// leave out with interop/adjust-omit.
func expectedV012Adjustment(t string, omit ...string) *api.ContainerAdjustment {
	adj := emptyAdjustment()
	mergeText(adj, v012AdjustmentText(t))
	for _, o := range omit {
		m := adj.Linux.ProtoReflect()
		if o == "args" {
			m = adj.ProtoReflect()
		}
		if fd := m.Descriptor().Fields().ByName(protoreflect.Name(o)); fd != nil {
			m.Clear(fd)
		}
	}
	if atLeast(adaptationVersion, "v0.10.0") {
		return withRdtSkeleton(adj)
	}
	return adj
}

// v012Fields are the adjustment fields of interop/adjust=v012, each from
// the NRI version whose API has it.
var v012Fields = []struct{ path, since string }{
	{"args", "v0.10.0"},
	{"linux.io_priority", "v0.10.0"},
	{"linux.seccomp_policy", "v0.10.0"},
	{"linux.namespaces", "v0.10.0"},
	{"linux.sysctl", "v0.11.0"},
	{"linux.net_devices", "v0.11.0"},
	{"linux.scheduler", "v0.11.0"},
	{"linux.rdt", "v0.11.0"},
	{"linux.memory_policy", "v0.12.0"},
}

// ---------------------------------------------------------------------------
// Reflection over fields that exist in some API versions only.

// lookupPath follows a dotted path of field names (message fields only for
// the inner steps); ok is false when a field does not exist in the linked
// API or an inner message is unset.
func lookupPath(m protoreflect.Message, path string) (protoreflect.FieldDescriptor, protoreflect.Value, bool) {
	names := strings.Split(path, ".")
	for i, n := range names {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(n))
		if fd == nil {
			return nil, protoreflect.Value{}, false
		}
		if i == len(names)-1 {
			return fd, m.Get(fd), true
		}
		if fd.Message() == nil || !m.Has(fd) {
			return nil, protoreflect.Value{}, false
		}
		m = m.Get(fd).Message()
	}
	return nil, protoreflect.Value{}, false
}

func protoMapKey(s string) protoreflect.MapKey { return protoreflect.ValueOfString(s).MapKey() }

// hasPath reports whether the field at path exists and is set (a non-empty
// list or map, a present message, a non-zero scalar).
func hasPath(m proto.Message, path string) bool {
	r := m.ProtoReflect()
	names := strings.Split(path, ".")
	last := names[len(names)-1]
	if len(names) > 1 {
		_, v, ok := lookupPath(r, strings.Join(names[:len(names)-1], "."))
		if !ok {
			return false
		}
		r = v.Message()
	}
	fd := r.Descriptor().Fields().ByName(protoreflect.Name(last))
	return fd != nil && r.Has(fd)
}

// ---------------------------------------------------------------------------
// The contract's Fields line, rendered from what the runtime sent.

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fieldsLine renders the contract's Fields line for container c (the
// runtime's view: fields the linked API lacks render as unset).
func fieldsLine(c *api.Container) string {
	m := c.ProtoReflect()
	num := func(path string) string {
		_, v, ok := lookupPath(m, path)
		if !ok {
			return "0"
		}
		return fmt.Sprint(v.Interface())
	}
	str := func(path string) string {
		_, v, ok := lookupPath(m, path)
		if !ok {
			return "-"
		}
		return dash(v.String())
	}
	enum := func(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	}
	// msg returns the message at path, or nil when unset or unknown
	msg := func(path string) protoreflect.Message {
		fd, v, ok := lookupPath(m, path)
		if !ok || fd.Message() == nil || !v.Message().IsValid() {
			return nil
		}
		return v.Message()
	}
	get := func(mm protoreflect.Message, name string) (protoreflect.FieldDescriptor, protoreflect.Value) {
		fd := mm.Descriptor().Fields().ByName(protoreflect.Name(name))
		return fd, mm.Get(fd)
	}
	list := func(mm protoreflect.Message, name string) string {
		fd, v := get(mm, name)
		var parts []string
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			if fd.Enum() != nil {
				parts = append(parts, enum(fd, l.Get(i)))
			} else {
				parts = append(parts, fmt.Sprint(l.Get(i).Interface()))
			}
		}
		return dash(strings.Join(parts, ","))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Fields ctr=%s", dash(c.Id))
	fmt.Fprintf(&b, " created=%s started=%s finished=%s exit=%s",
		num("created_at"), num("started_at"), num("finished_at"), num("exit_code"))
	fmt.Fprintf(&b, " reason=%s message=%s", str("status_reason"), str("status_message"))

	cdi := "-"
	if _, v, ok := lookupPath(m, "CDI_devices"); ok {
		var names []string
		for i := 0; i < v.List().Len(); i++ {
			_, n := get(v.List().Get(i).Message(), "name")
			names = append(names, n.String())
		}
		cdi = dash(strings.Join(names, ","))
	}
	fmt.Fprintf(&b, " cdi=%s", cdi)

	user := "-"
	if u := msg("user"); u != nil {
		_, uid := get(u, "uid")
		_, gid := get(u, "gid")
		user = fmt.Sprintf("%d:%d:%s", uid.Uint(), gid.Uint(), list(u, "additional_gids"))
	}
	fmt.Fprintf(&b, " user=%s", user)

	image := "-"
	if im := msg("image"); im != nil {
		_, n := get(im, "name")
		image = dash(n.String())
	}
	fmt.Fprintf(&b, " image=%s", image)

	ioprio := "-"
	if p := msg("linux.io_priority"); p != nil {
		cfd, cls := get(p, "class")
		_, prio := get(p, "priority")
		ioprio = fmt.Sprintf("%s:%d", enum(cfd, cls), prio.Int())
	}
	fmt.Fprintf(&b, " ioprio=%s", ioprio)

	profile := "-"
	if p := msg("linux.seccomp_profile"); p != nil {
		tfd, typ := get(p, "profile_type")
		_, ref := get(p, "localhost_ref")
		profile = fmt.Sprintf("%s:%s", enum(tfd, typ), dash(ref.String()))
	}
	fmt.Fprintf(&b, " seccomp-profile=%s", profile)

	policy := "-"
	if p := msg("linux.seccomp_policy"); p != nil {
		_, act := get(p, "default_action")
		_, sys := get(p, "syscalls")
		policy = fmt.Sprintf("%s:%s:%d", dash(act.String()), list(p, "architectures"), sys.List().Len())
	}
	fmt.Fprintf(&b, " seccomp-policy=%s", policy)

	sysctl := "-"
	if _, v, ok := lookupPath(m, "linux.sysctl"); ok && v.Map().Len() > 0 {
		var kv []string
		v.Map().Range(func(k protoreflect.MapKey, val protoreflect.Value) bool {
			kv = append(kv, k.String()+"="+val.String())
			return true
		})
		sort.Strings(kv)
		sysctl = strings.Join(kv, ",")
	}
	fmt.Fprintf(&b, " sysctl=%s", sysctl)

	netdevs := "-"
	if _, v, ok := lookupPath(m, "linux.net_devices"); ok && v.Map().Len() > 0 {
		var kv []string
		v.Map().Range(func(k protoreflect.MapKey, val protoreflect.Value) bool {
			name := ""
			if val.Message().IsValid() {
				_, n := get(val.Message(), "name")
				name = n.String()
			}
			kv = append(kv, k.String()+":"+dash(name))
			return true
		})
		sort.Strings(kv)
		netdevs = strings.Join(kv, ",")
	}
	fmt.Fprintf(&b, " netdevs=%s", netdevs)

	sched := "-"
	if p := msg("linux.scheduler"); p != nil {
		pfd, pol := get(p, "policy")
		_, nice := get(p, "nice")
		_, prio := get(p, "priority")
		sched = fmt.Sprintf("%s:%d:%d:%s", enum(pfd, pol), nice.Int(), prio.Int(), list(p, "flags"))
	}
	fmt.Fprintf(&b, " sched=%s", sched)

	rdt := "-"
	if p := msg("linux.rdt"); p != nil {
		opt := func(name string) string {
			fd, v := get(p, name)
			if !p.Has(fd) {
				return "-"
			}
			inner := v.Message()
			vfd, val := get(inner, "value")
			if vfd.IsList() {
				return list(inner, "value")
			}
			return dash(fmt.Sprint(val.Interface()))
		}
		rdt = fmt.Sprintf("%s:%s:%s", opt("clos_id"), opt("schemata"), opt("enable_monitoring"))
	}
	fmt.Fprintf(&b, " rdt=%s", rdt)
	return b.String()
}
