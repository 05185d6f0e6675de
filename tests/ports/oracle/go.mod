module nri-rs/tests/ports/oracle

go 1.26

require (
	github.com/containerd/nri v0.12.5
	github.com/moby/sys/mountinfo v0.7.2
	github.com/opencontainers/runtime-spec v1.3.0
	github.com/r3labs/diff/v3 v3.0.0
	github.com/sirupsen/logrus v1.9.4
	go.podman.io/common v0.66.1
	google.golang.org/protobuf v1.36.9
	gopkg.in/yaml.v2 v2.4.0
	sigs.k8s.io/yaml v1.6.0
)

require (
	github.com/containerd/log v0.1.0 // indirect
	github.com/containerd/ttrpc v1.2.7 // indirect
	github.com/fsnotify/fsnotify v1.9.0 // indirect
	github.com/golang/protobuf v1.5.4 // indirect
	github.com/knqyf263/go-plugin v0.9.0 // indirect
	github.com/kr/text v0.2.0 // indirect
	github.com/tetratelabs/wazero v1.11.0 // indirect
	github.com/vmihailenco/msgpack v4.0.4+incompatible // indirect
	go.podman.io/storage v1.61.0 // indirect
	golang.org/x/net v0.45.0 // indirect
	golang.org/x/sys v0.39.0 // indirect
	google.golang.org/appengine v1.6.6 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20250414145226-207652e42e2e // indirect
	google.golang.org/grpc v1.72.2 // indirect
)

// nri::decode follows sigs.k8s.io/yaml v1.3.0 (its error wording among the
// rest): go.podman.io/common asks for v1.6.0 in packages the oracle does not
// use, and this keeps the whole oracle on v1.3.0.
replace sigs.k8s.io/yaml => sigs.k8s.io/yaml v1.3.0
