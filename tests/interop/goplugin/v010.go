//go:build nri_v0_10 || nri_v0_11 || nri_v0_12_3 || nri_v0_12_4 || nri_v0_12_5

// The contract's NRI v0.10+ additions: the pod update events, validation
// verdicts, every adjustment added since v0.9, the runtime's NRI version in
// the Configure line and the -failure-policy flag.

package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/proto"
)

const (
	annValidate = "interop/validate"
	// longReason is the length of a reject-long reason.
	longReason = 16384

	validateMethod = "/nri.pkg.api.v1alpha1.Plugin/ValidateContainerAdjustment"
)

// parseExtraKey parses the dump key of the differential check.
func parseExtraKey(cfg *config, key, value string) error {
	if key == "dump" {
		cfg.dump = value
	}
	return nil
}

// defineFlags defines -failure-policy; the returned function checks it and
// returns the stub option that sends it (v0.12.4 and newer builds; older stubs
// cannot send a policy).
func defineFlags() func() ([]stub.Option, error) {
	policy := flag.String("failure-policy", "none", "failure policy sent in the Configure reply: none, fail-request, keep-connected or fail-request,keep-connected")
	return func() ([]stub.Option, error) {
		switch *policy {
		case "none":
			return nil, nil
		case "fail-request", "keep-connected", "fail-request,keep-connected":
			return policyOptions(*policy), nil
		}
		return nil, fmt.Errorf("-failure-policy %q is none of none, fail-request, keep-connected, fail-request,keep-connected", *policy)
	}
}

// configureSuffix is " nri=<runtime's NRI version or ->".
func (p *plugin) configureSuffix() string {
	return " nri=" + idOrDash(runtimeNRIVersion(p))
}

// adjustExtra builds interop/adjust=v012: every adjustment added since v0.9,
// with the pkg/api helpers, less the parts named in omit
// (interop/adjust-omit).
func adjustExtra(a *api.ContainerAdjustment, t, kind string, omit []string) {
	if kind != "v012" {
		return
	}
	defer omitParts(a, omit)
	a.SetArgs([]string{"/bin/" + t, "--interop"})
	a.SetLinuxIOPriority(&api.LinuxIOPriority{
		Class:    api.IOPrioClass_IOPRIO_CLASS_BE,
		Priority: 4,
	})
	a.SetLinuxSeccompPolicy(&api.LinuxSeccomp{
		DefaultAction: "SCMP_ACT_ALLOW",
		Architectures: []string{"SCMP_ARCH_X86_64"},
		Syscalls: []*api.LinuxSyscall{{
			Names:    []string{t + "_call"},
			Action:   "SCMP_ACT_ERRNO",
			ErrnoRet: api.UInt32(uint32(1)),
		}},
	})
	a.AddOrReplaceNamespace(&api.LinuxNamespace{Type: "network", Path: "/var/run/netns/" + t})
	adjustV011(a, t)
	setMemoryPolicy(a)
}

func (p *plugin) UpdatePodSandbox(_ context.Context, pod *api.PodSandbox, _, _ *api.LinuxResources) error {
	return p.podEvent("UpdatePodSandbox", pod)
}

func (p *plugin) PostUpdatePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	return p.podEvent("PostUpdatePodSandbox", pod)
}

// ValidateContainerAdjustment subscribes the plugin to validation; requests
// are answered by the interceptor (validate), which can fail with a status
// where the stub would turn every error into a rejection.
func (p *plugin) ValidateContainerAdjustment(_ context.Context, req *api.ValidateContainerAdjustmentRequest) error {
	rpl, err := p.validate(req)
	if err != nil {
		return err
	}
	if rpl.Reject {
		return fmt.Errorf("%s", rpl.Reason)
	}
	return nil
}

// validate logs the request, applies sleep-ms and fail (an error status),
// then answers the interop/validate verdict.
func (p *plugin) validate(req *api.ValidateContainerAdjustmentRequest) (*api.ValidateContainerAdjustmentResponse, error) {
	pod, ctr := req.GetPod(), req.GetContainer()
	names := make([]string, 0, len(req.GetPlugins()))
	for _, pi := range req.GetPlugins() {
		names = append(names, pi.GetIndex()+"-"+pi.GetName())
	}
	list := strings.Join(names, ",")
	p.logf("ValidateContainerAdjustment pod=%s ctr=%s plugins=%s", podID(pod), ctrID(ctr), idOrDash(list))
	if err := p.dump(req); err != nil {
		return nil, err
	}
	if err := common(pod, ctr); err != nil {
		return nil, err
	}
	reason := "interop: " + p.tag() + " rejects"
	switch v, _ := lookup(pod, ctr, annValidate); v {
	case "reject":
		return &api.ValidateContainerAdjustmentResponse{Reject: true, Reason: reason}, nil
	case "reject-long":
		long := reason + " "
		long += strings.Repeat("x", longReason-len(long))
		return &api.ValidateContainerAdjustmentResponse{Reject: true, Reason: long}, nil
	}
	return &api.ValidateContainerAdjustmentResponse{}, nil
}

// extraOptions installs the interceptor that answers validation requests
// itself.
func extraOptions(p *plugin) []stub.Option {
	intercept := func(ctx context.Context, unmarshal ttrpc.Unmarshaler, info *ttrpc.UnaryServerInfo, method ttrpc.Method) (interface{}, error) {
		switch info.FullMethod {
		case validateMethod:
			req := &api.ValidateContainerAdjustmentRequest{}
			if err := unmarshal(req); err != nil {
				return nil, err
			}
			return p.validate(req)
		}
		return method(ctx, unmarshal)
	}
	return []stub.Option{
		stub.WithTTRPCOptions(nil, []ttrpc.ServerOpt{ttrpc.WithUnaryServerInterceptor(intercept)}),
	}
}

// dump appends the request to the dump file, if one is configured: a 4-byte
// big-endian length, then the protobuf bytes (the differential check reads
// what each runtime sent).
func (p *plugin) dump(req *api.ValidateContainerAdjustmentRequest) error {
	p.mu.Lock()
	path := p.cfg.dump
	p.mu.Unlock()
	if path == "" {
		return nil
	}
	b, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	rec := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(rec, uint32(len(b)))
	rec = append(rec, b...)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(rec); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	return nil
}

// omitParts clears the named parts of a v012 adjustment.
func omitParts(a *api.ContainerAdjustment, omit []string) {
	for _, part := range omit {
		l := a.GetLinux()
		if l == nil && part != "args" {
			continue
		}
		switch part {
		case "args":
			a.Args = nil
		case "io_priority":
			l.IoPriority = nil
		case "seccomp_policy":
			l.SeccompPolicy = nil
		case "namespaces":
			l.Namespaces = nil
		case "memory_policy":
			clearMemoryPolicy(l)
		default:
			omitV011Part(l, part)
		}
	}
}

// logFields logs the contract's Fields line for c (interop/fields=yes).
func (p *plugin) logFields(c *api.Container) {
	l := c.GetLinux()
	cdi := []string{}
	for _, d := range c.GetCDIDevices() {
		cdi = append(cdi, d.GetName())
	}
	ioprio := "-"
	if io := l.GetIoPriority(); io != nil {
		ioprio = fmt.Sprintf("%s:%d", io.GetClass(), io.GetPriority())
	}
	profile := "-"
	if sp := l.GetSeccompProfile(); sp != nil {
		profile = fmt.Sprintf("%s:%s", sp.GetProfileType(), dash(sp.GetLocalhostRef()))
	}
	policy := "-"
	if sp := l.GetSeccompPolicy(); sp != nil {
		policy = fmt.Sprintf("%s:%s:%d", dash(sp.GetDefaultAction()), joinDash(sp.GetArchitectures()), len(sp.GetSyscalls()))
	}
	v11 := v011Fields(c)
	p.logf("Fields ctr=%s created=%d started=%d finished=%d exit=%d reason=%s message=%s cdi=%s user=%s image=%s ioprio=%s seccomp-profile=%s seccomp-policy=%s sysctl=%s netdevs=%s sched=%s rdt=%s",
		dash(c.GetId()), c.GetCreatedAt(), c.GetStartedAt(), c.GetFinishedAt(), c.GetExitCode(),
		dash(c.GetStatusReason()), dash(c.GetStatusMessage()), joinDash(cdi), v11.user, imageName(c),
		ioprio, profile, policy, v11.sysctl, v11.netdevs, v11.sched, v11.rdt)
}

// dash is s, or "-" when s is empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// joinDash is the comma-joined list, or "-" when it is empty.
func joinDash(v []string) string { return dash(strings.Join(v, ",")) }

// fieldsV011 are the parts of the Fields line for the fields v0.11.0
// added ("-" where the API or the container has none).
type fieldsV011 struct{ user, sysctl, netdevs, sched, rdt string }
