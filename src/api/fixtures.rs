//! Realistic pods and containers for tests, in one call each.
//!
//! [`pod`] and [`container`] start builders whose defaults look like what
//! containerd hands a plugin for a Kubernetes pod of QoS class BestEffort
//! under the systemd cgroup driver: 64-hex IDs, a UID, the labels and
//! annotations the kubelet and containerd add, cgroup parent and paths,
//! namespaces joined through the sandbox's process, the usual mounts
//! (`/proc`, `/etc/hosts`, the service account token…), environment,
//! resources (CPU shares 2, no memory limit), a process ID, an image. Every
//! value is derived from the names given, so a test sees the same values on
//! every run and two fixtures with different names never share an ID.
//!
//! The builders' methods set what tests usually vary, nested fields
//! included (`.memory_limit(…)` rather than
//! `ctr.linux.mut_or_insert_default().resources…`); everything else is a
//! public field of the built message.
//!
//! # Testing a plugin without containerd
//!
//! Run the plugin over a socket pair against [`crate::runtime::Runtime`]
//! and hand it fixtures (this is the README's snippet, run as a doctest):
//!
//! ```
//! # use nri::api::{Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, OptionalExt, PodSandbox};
//! # use nri::stub::{Context, HandlerResult, Plugin};
//! # /// The README's memory defaulter.
//! # struct MemoryDefaulter;
//! # impl Plugin for MemoryDefaulter {
//! #     fn events(&self) -> EventMask {
//! #         Event::CREATE_CONTAINER.into()
//! #     }
//! #     fn create_container(
//! #         &self,
//! #         _ctx: &Context<'_>,
//! #         pod: &PodSandbox,
//! #         ctr: &Container,
//! #     ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
//! #         let mut adjust = ContainerAdjustment::new();
//! #         let limited = ctr.linux.resources.memory.limit.value().is_some_and(|l| l > 0);
//! #         if let (false, Some(text)) = (limited, pod.annotations.get(KEY)) {
//! #             adjust.set_linux_memory_limit(text.parse()?);
//! #         }
//! #         Ok((adjust, Vec::new()))
//! #     }
//! # }
//! # const KEY: &str = "memory-defaulter.example.com/limit";
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use nri::api::{fixtures, OptionalExt};
//! use nri::{runtime::Runtime, stub::Stub};
//!
//! let runtime = Runtime::builder().plugin_config("mine", "key: value").build();
//! let (runtime_end, plugin_end) = std::os::unix::net::UnixStream::pair()?;
//! let stub = Stub::builder(MemoryDefaulter).plugin_name("mine").plugin_index("10")
//!     .connection(plugin_end).build()?;
//! let serving = stub.clone();
//! std::thread::spawn(move || serving.run());
//! let plugin = runtime.accept_stream(runtime_end)?; // registered, configured, synchronized
//!
//! let pod = fixtures::pod("web").annotation(KEY, "536870912").build();
//! let container = fixtures::container(&pod, "nginx").build();
//! let reply = plugin.create_container(&pod, &container)?;
//! assert_eq!(reply.adjust.linux.resources.memory.limit.value(), Some(512 << 20));
//! # stub.stop();
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;

use super::{
    optional, Container, ContainerState, Hooks, Image, LinuxContainer, LinuxDevice, LinuxNamespace,
    LinuxPodSandbox, LinuxResources, Mount, POSIXRlimit, PodSandbox, User,
};

/// The time every fixture was created, in nanoseconds since the Unix epoch
/// (2024-06-01T00:00:00Z): fixed, so that tests are repeatable.
pub const CREATED_AT: i64 = 1_717_200_000_000_000_000;

/// A builder of a [`PodSandbox`] named `name` in namespace `default`; see
/// [`PodFixture`] for what it sets.
///
/// ```
/// use nri::api::fixtures;
/// let pod = fixtures::pod("web").namespace("shop").label("app", "web").build();
/// assert_eq!((pod.name.as_str(), pod.namespace.as_str()), ("web", "shop"));
/// assert_eq!(pod.id.len(), 64);
/// assert_eq!(pod.labels["io.kubernetes.pod.namespace"], "shop");
/// assert!(pod.linux.cgroup_parent.starts_with("kubepods-besteffort-pod"));
/// ```
pub fn pod(name: &str) -> PodFixture {
    PodFixture {
        name: name.to_string(),
        namespace: "default".to_string(),
        id: None,
        uid: None,
        labels: Vec::new(),
        annotations: Vec::new(),
        runtime_handler: String::new(),
        cgroup_parent: None,
        pid: None,
        ips: None,
    }
}

/// A builder of a [`Container`] named `name` in `pod`; see
/// [`ContainerFixture`] for what it sets.
///
/// ```
/// use nri::api::{fixtures, ContainerState, OptionalExt};
/// let pod = fixtures::pod("web").build();
/// let ctr = fixtures::container(&pod, "nginx").memory_limit(256 << 20).build();
/// assert_eq!(ctr.pod_sandbox_id, pod.id);
/// assert_eq!(ctr.state.enum_value(), Ok(ContainerState::CONTAINER_CREATED));
/// assert_eq!(ctr.linux.resources.memory.limit.value(), Some(256 << 20));
/// assert!(ctr.linux.cgroups_path.ends_with(&ctr.id));
/// ```
pub fn container(pod: &PodSandbox, name: &str) -> ContainerFixture {
    ContainerFixture {
        pod: pod.clone(),
        name: name.to_string(),
        id: None,
        state: ContainerState::CONTAINER_CREATED,
        pid: None,
        args: None,
        env: Vec::new(),
        labels: Vec::new(),
        annotations: Vec::new(),
        mounts: Vec::new(),
        devices: Vec::new(),
        rlimits: Vec::new(),
        hooks: None,
        resources: default_container_resources(),
        image: None,
    }
}

/// Builds a realistic [`PodSandbox`]. Start one with [`pod`].
///
/// Defaults, all derived from the namespace and name:
/// - `id`: 64 hexadecimal digits; `uid`: a UUID;
/// - `labels`: `io.kubernetes.pod.name`, `io.kubernetes.pod.namespace`,
///   `io.kubernetes.pod.uid`; `annotations`: `kubernetes.io/config.source`
///   and `kubernetes.io/config.seen`;
/// - `linux.cgroup_parent`: `kubepods-besteffort-pod<uid>.slice` (dashes of
///   the UID as underscores); `linux.cgroups_path`:
///   `<parent>:cri-containerd:<id>`; `linux.namespaces`: a network namespace
///   at `/var/run/netns/cni-<uuid>`, new `ipc`, `uts`, `pid` and `mount`
///   namespaces; `linux.resources`: CPU shares 2;
/// - `pid`: a process ID between 1000 and 64999; `ips`: one `10.244.x.y`.
#[derive(Debug, Clone)]
pub struct PodFixture {
    name: String,
    namespace: String,
    id: Option<String>,
    uid: Option<String>,
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
    runtime_handler: String,
    cgroup_parent: Option<String>,
    pid: Option<u32>,
    ips: Option<Vec<String>>,
}

impl PodFixture {
    /// The pod's Kubernetes namespace (default `default`).
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_string();
        self
    }

    /// The sandbox ID, instead of the derived one.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_string());
        self
    }

    /// The pod UID, instead of the derived one.
    pub fn uid(mut self, uid: &str) -> Self {
        self.uid = Some(uid.to_string());
        self
    }

    /// A label, added to (or replacing one of) the defaults.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_string(), value.to_string()));
        self
    }

    /// An annotation, added to (or replacing one of) the defaults.
    ///
    /// ```
    /// use nri::api::fixtures;
    /// let pod = fixtures::pod("db").annotation("devices.noderesource.dev/pod", "- path: /dev/fuse").build();
    /// assert_eq!(pod.annotations["devices.noderesource.dev/pod"], "- path: /dev/fuse");
    /// assert_eq!(pod.annotations["kubernetes.io/config.source"], "api");
    /// ```
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.push((key.to_string(), value.to_string()));
        self
    }

    /// The runtime handler (RuntimeClass handler); default empty.
    pub fn runtime_handler(mut self, handler: &str) -> Self {
        self.runtime_handler = handler.to_string();
        self
    }

    /// The parent cgroup of the pod's containers, instead of the BestEffort
    /// slice (such as `kubepods-pod<uid>.slice` for a Guaranteed pod).
    pub fn cgroup_parent(mut self, parent: &str) -> Self {
        self.cgroup_parent = Some(parent.to_string());
        self
    }

    /// The sandbox process's ID, instead of the derived one.
    pub fn pid(mut self, pid: u32) -> Self {
        self.pid = Some(pid);
        self
    }

    /// The pod's IP addresses, instead of the derived one.
    pub fn ips(mut self, ips: &[&str]) -> Self {
        self.ips = Some(ips.iter().map(|ip| ip.to_string()).collect());
        self
    }

    /// The pod.
    pub fn build(self) -> PodSandbox {
        let key = format!("pod/{}/{}", self.namespace, self.name);
        let id = self.id.unwrap_or_else(|| hex_id(&key));
        let uid = self.uid.unwrap_or_else(|| uuid(&key));
        let parent = self
            .cgroup_parent
            .unwrap_or_else(|| format!("kubepods-besteffort-pod{}.slice", uid.replace('-', "_")));
        let pid = self.pid.unwrap_or_else(|| derived_pid(&key));
        let h = hash(&key, 7);
        let ips = self
            .ips
            .unwrap_or_else(|| vec![format!("10.244.{}.{}", h % 256, 2 + (h >> 8) % 250)]);

        let mut labels = map([
            ("io.kubernetes.pod.name", self.name.as_str()),
            ("io.kubernetes.pod.namespace", self.namespace.as_str()),
            ("io.kubernetes.pod.uid", uid.as_str()),
        ]);
        labels.extend(self.labels);
        let mut annotations = map([
            ("kubernetes.io/config.source", "api"),
            (
                "kubernetes.io/config.seen",
                "2024-06-01T00:00:00.000000000Z",
            ),
        ]);
        annotations.extend(self.annotations);

        let mut resources = LinuxResources::new();
        resources.cpu.mut_or_insert_default().shares = optional(2);
        let linux = LinuxPodSandbox {
            cgroup_parent: parent.clone(),
            cgroups_path: format!("{parent}:cri-containerd:{id}"),
            namespaces: vec![
                LinuxNamespace::join(
                    LinuxNamespace::NETWORK,
                    format!("/var/run/netns/cni-{}", uuid(&format!("netns/{key}"))),
                ),
                LinuxNamespace::create(LinuxNamespace::IPC),
                LinuxNamespace::create(LinuxNamespace::UTS),
                LinuxNamespace::create(LinuxNamespace::PID),
                LinuxNamespace::create(LinuxNamespace::MOUNT),
            ],
            resources: Some(resources).into(),
            ..Default::default()
        };
        PodSandbox {
            id,
            name: self.name,
            uid,
            namespace: self.namespace,
            labels,
            annotations,
            runtime_handler: self.runtime_handler,
            linux: Some(linux).into(),
            pid,
            ips,
            ..Default::default()
        }
    }
}

/// Builds a realistic [`Container`]. Start one with [`container`].
///
/// Defaults, all derived from the pod and the name:
/// - `id`: 64 hexadecimal digits; `pod_sandbox_id`: the pod's; `state`:
///   created (no `pid`, no `started_at`); `created_at`: [`CREATED_AT`];
/// - `labels`: `io.kubernetes.container.name` and the pod's
///   `io.kubernetes.pod.*`; `annotations`: containerd's
///   `io.kubernetes.cri.*` (container name and type, sandbox ID, name,
///   namespace and UID, image name);
/// - `args`: `/usr/local/bin/<name>`; `env`: `PATH`, `HOSTNAME` (the pod's
///   name) and the Kubernetes service variables;
/// - `mounts`: `/proc`, `/dev`, `/dev/pts`, `/dev/mqueue`, `/sys`,
///   `/sys/fs/cgroup`, `/etc/hosts`, `/dev/termination-log`,
///   `/etc/hostname`, `/etc/resolv.conf`, `/dev/shm` and the service
///   account token, in that order;
/// - `linux.namespaces`: new `pid` and `mount`, the sandbox's `ipc`, `uts`
///   and `network` (through `/proc/<pod pid>/ns/…`); `linux.resources`: CPU
///   shares 2, period 100000 µs, no quota, no memory limit;
///   `linux.oom_score_adj`: 1000; `linux.cgroups_path`:
///   `<pod cgroup parent>:cri-containerd:<id>`;
/// - `user`: uid 0, gid 0; `image`: `docker.io/library/<name>:latest` with
///   derived digests; no hooks, rlimits, devices or CDI devices.
#[derive(Debug, Clone)]
pub struct ContainerFixture {
    pod: PodSandbox,
    name: String,
    id: Option<String>,
    state: ContainerState,
    pid: Option<u32>,
    args: Option<Vec<String>>,
    env: Vec<String>,
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
    mounts: Vec<Mount>,
    devices: Vec<LinuxDevice>,
    rlimits: Vec<POSIXRlimit>,
    hooks: Option<Hooks>,
    resources: LinuxResources,
    image: Option<String>,
}

impl ContainerFixture {
    /// The container ID, instead of the derived one.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_string());
        self
    }

    /// The container's state (default created). Running and stopped
    /// containers get a `pid` (unless [`ContainerFixture::pid`] sets one)
    /// and `started_at`; stopped ones also `finished_at`, exit code 0 and
    /// reason `Completed`.
    ///
    /// ```
    /// use nri::api::{fixtures, ContainerState};
    /// let pod = fixtures::pod("batch").build();
    /// let done = fixtures::container(&pod, "job").state(ContainerState::CONTAINER_STOPPED).build();
    /// assert!(done.pid > 0 && done.finished_at > done.started_at);
    /// assert_eq!(done.status_reason, "Completed");
    /// ```
    pub fn state(mut self, state: ContainerState) -> Self {
        self.state = state;
        self
    }

    /// The container process's ID.
    pub fn pid(mut self, pid: u32) -> Self {
        self.pid = Some(pid);
        self
    }

    /// The command line, program first, instead of the default.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args = Some(args.iter().map(|a| a.to_string()).collect());
        self
    }

    /// An environment variable, after the defaults.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push(format!("{key}={value}"));
        self
    }

    /// A label, added to (or replacing one of) the defaults.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_string(), value.to_string()));
        self
    }

    /// An annotation, added to (or replacing one of) the defaults.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.push((key.to_string(), value.to_string()));
        self
    }

    /// A mount, after the defaults.
    ///
    /// ```
    /// use nri::api::{fixtures, Mount};
    /// let pod = fixtures::pod("web").build();
    /// let ctr = fixtures::container(&pod, "nginx").mount(Mount::bind("/srv/www", "/www").read_only()).build();
    /// assert_eq!(ctr.mounts.last().unwrap().destination, "/www");
    /// ```
    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// A device node.
    pub fn device(mut self, device: LinuxDevice) -> Self {
        self.devices.push(device);
        self
    }

    /// A POSIX resource limit.
    pub fn rlimit(mut self, rlimit: POSIXRlimit) -> Self {
        self.rlimits.push(rlimit);
        self
    }

    /// The container's OCI hooks.
    pub fn hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// A memory limit, in bytes.
    pub fn memory_limit(mut self, bytes: i64) -> Self {
        self.resources.memory.mut_or_insert_default().limit = optional(bytes);
        self
    }

    /// CPU shares, instead of 2.
    pub fn cpu_shares(mut self, shares: u64) -> Self {
        self.resources.cpu.mut_or_insert_default().shares = optional(shares);
        self
    }

    /// A CPU quota and its period, in microseconds.
    ///
    /// ```
    /// use nri::api::{fixtures, OptionalExt};
    /// let pod = fixtures::pod("web").build();
    /// let ctr = fixtures::container(&pod, "nginx").cpu_quota(50_000, 100_000).build();
    /// let cpu = &ctr.linux.resources.cpu;
    /// assert_eq!((cpu.quota.value(), cpu.period.value()), (Some(50_000), Some(100_000)));
    /// ```
    pub fn cpu_quota(mut self, quota: i64, period: u64) -> Self {
        let cpu = self.resources.cpu.mut_or_insert_default();
        cpu.quota = optional(quota);
        cpu.period = optional(period);
        self
    }

    /// The CPUs and memory nodes of the container's cpuset, such as `"0-3"`
    /// and `"0"` (empty leaves one unset).
    pub fn cpuset(mut self, cpus: &str, mems: &str) -> Self {
        let cpu = self.resources.cpu.mut_or_insert_default();
        cpu.cpus = cpus.to_string();
        cpu.mems = mems.to_string();
        self
    }

    /// The image reference, instead of `docker.io/library/<name>:latest`.
    pub fn image(mut self, reference: &str) -> Self {
        self.image = Some(reference.to_string());
        self
    }

    /// The container.
    pub fn build(self) -> Container {
        let pod = &self.pod;
        let key = format!("container/{}/{}", pod.id, self.name);
        let id = self.id.unwrap_or_else(|| hex_id(&key));
        let image = self
            .image
            .unwrap_or_else(|| format!("docker.io/library/{}:latest", self.name));

        let mut labels = map([
            ("io.kubernetes.container.name", self.name.as_str()),
            ("io.kubernetes.pod.name", pod.name.as_str()),
            ("io.kubernetes.pod.namespace", pod.namespace.as_str()),
            ("io.kubernetes.pod.uid", pod.uid.as_str()),
        ]);
        labels.extend(self.labels);
        let mut annotations = map([
            ("io.kubernetes.cri.container-name", self.name.as_str()),
            ("io.kubernetes.cri.container-type", "container"),
            ("io.kubernetes.cri.image-name", image.as_str()),
            ("io.kubernetes.cri.sandbox-id", pod.id.as_str()),
            ("io.kubernetes.cri.sandbox-name", pod.name.as_str()),
            (
                "io.kubernetes.cri.sandbox-namespace",
                pod.namespace.as_str(),
            ),
            ("io.kubernetes.cri.sandbox-uid", pod.uid.as_str()),
        ]);
        annotations.extend(self.annotations);

        let mut env = vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            format!("HOSTNAME={}", pod.name),
            "KUBERNETES_SERVICE_HOST=10.96.0.1".to_string(),
            "KUBERNETES_SERVICE_PORT=443".to_string(),
        ];
        env.extend(self.env);
        let mut mounts = default_mounts(pod, &key);
        mounts.extend(self.mounts);

        let sandbox_ns = |kind: &str, file: &str| {
            if pod.pid == 0 {
                LinuxNamespace::create(kind)
            } else {
                LinuxNamespace::join(kind, format!("/proc/{}/ns/{file}", pod.pid))
            }
        };
        let linux = LinuxContainer {
            namespaces: vec![
                LinuxNamespace::create(LinuxNamespace::PID),
                sandbox_ns(LinuxNamespace::IPC, "ipc"),
                sandbox_ns(LinuxNamespace::UTS, "uts"),
                LinuxNamespace::create(LinuxNamespace::MOUNT),
                sandbox_ns(LinuxNamespace::NETWORK, "net"),
            ],
            devices: self.devices,
            resources: Some(self.resources).into(),
            oom_score_adj: optional(1000),
            cgroups_path: format!("{}:cri-containerd:{id}", pod.linux.cgroup_parent),
            ..Default::default()
        };

        let started = matches!(
            self.state,
            ContainerState::CONTAINER_RUNNING
                | ContainerState::CONTAINER_PAUSED
                | ContainerState::CONTAINER_STOPPED
        );
        let stopped = self.state == ContainerState::CONTAINER_STOPPED;
        let pid = match (self.pid, started) {
            (Some(pid), _) => pid,
            (None, true) => derived_pid(&key),
            (None, false) => 0,
        };
        Container {
            pod_sandbox_id: pod.id.clone(),
            name: self.name.clone(),
            state: self.state.into(),
            labels,
            annotations,
            args: self
                .args
                .unwrap_or_else(|| vec![format!("/usr/local/bin/{}", self.name)]),
            env,
            mounts,
            hooks: self.hooks.into(),
            linux: Some(linux).into(),
            pid,
            rlimits: self.rlimits,
            created_at: CREATED_AT,
            started_at: if started {
                CREATED_AT + 1_000_000_000
            } else {
                0
            },
            finished_at: if stopped {
                CREATED_AT + 61_000_000_000
            } else {
                0
            },
            exit_code: 0,
            status_reason: if stopped {
                "Completed".to_string()
            } else {
                String::new()
            },
            user: Some(User::new()).into(),
            image: Some(Image {
                name: image.clone(),
                digest: format!("sha256:{}", hex_id(&format!("index/{image}"))),
                config_digest: format!("sha256:{}", hex_id(&format!("config/{image}"))),
                ..Default::default()
            })
            .into(),
            id,
            ..Default::default()
        }
    }
}

fn default_container_resources() -> LinuxResources {
    let mut resources = LinuxResources::new();
    let cpu = resources.cpu.mut_or_insert_default();
    cpu.shares = optional(2);
    cpu.period = optional(100_000);
    resources
}

fn default_mounts(pod: &PodSandbox, key: &str) -> Vec<Mount> {
    let sandbox = format!(
        "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/{}",
        pod.id
    );
    let ctr_dir = format!(
        "/var/lib/kubelet/pods/{}/containers/{}",
        pod.uid,
        &hex_id(key)[..8]
    );
    let token = format!(
        "/var/lib/kubelet/pods/{}/volumes/kubernetes.io~projected/kube-api-access-{}",
        pod.uid,
        &hex_id(&format!("token/{}", pod.uid))[..5]
    );
    let bind = |src: String, dst: &str| Mount::bind(src, dst).with_option("rprivate");
    vec![
        Mount::of_type("proc", "proc", "/proc").with_options(["nosuid", "noexec", "nodev"]),
        Mount::tmpfs("/dev").with_options(["strictatime", "mode=755", "size=65536k"]),
        Mount::of_type("devpts", "devpts", "/dev/pts").with_options([
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]),
        Mount::of_type("mqueue", "mqueue", "/dev/mqueue")
            .with_options(["nosuid", "noexec", "nodev"]),
        Mount::of_type("sysfs", "sysfs", "/sys").with_options(["nosuid", "noexec", "nodev", "ro"]),
        Mount::of_type("cgroup", "cgroup", "/sys/fs/cgroup")
            .with_options(["nosuid", "noexec", "nodev", "relatime", "ro"]),
        bind(format!("{sandbox}/hosts"), "/etc/hosts").with_option("rw"),
        bind(format!("{ctr_dir}/termination-log"), "/dev/termination-log").with_option("rw"),
        bind(format!("{sandbox}/hostname"), "/etc/hostname").with_option("rw"),
        bind(format!("{sandbox}/resolv.conf"), "/etc/resolv.conf").with_option("rw"),
        bind(
            format!(
                "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/{}/shm",
                pod.id
            ),
            "/dev/shm",
        )
        .with_option("rw"),
        bind(token, "/var/run/secrets/kubernetes.io/serviceaccount").read_only(),
    ]
}

fn map<const N: usize>(pairs: [(&str, &str); N]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// FNV-1a over `salt` and `text`: a stable, well-spread 64-bit value.
fn hash(text: &str, salt: u8) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in std::iter::once(salt).chain(text.bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// 64 hexadecimal digits derived from `text`, like a containerd ID.
fn hex_id(text: &str) -> String {
    (0..4)
        .map(|salt| format!("{:016x}", hash(text, salt)))
        .collect()
}

/// A version-4-shaped UUID derived from `text`.
fn uuid(text: &str) -> String {
    let (a, b) = (hash(text, 10), hash(text, 11));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

fn derived_pid(text: &str) -> u32 {
    1000 + (hash(text, 20) % 64_000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::OptionalExt;
    use protobuf::Message;

    #[test]
    fn fixtures_are_the_same_on_every_call() {
        let a = pod("web").build();
        assert_eq!(a, pod("web").build());
        assert_eq!(
            container(&a, "nginx").build(),
            container(&a, "nginx").build()
        );
    }

    #[test]
    fn ids_differ_by_name_namespace_and_pod() {
        let web = pod("web").build();
        let web_shop = pod("web").namespace("shop").build();
        let api = pod("api").build();
        assert_ne!(web.id, web_shop.id);
        assert_ne!(web.id, api.id);
        assert_ne!(web.uid, api.uid);
        // The same container name in two pods.
        assert_ne!(
            container(&web, "app").build().id,
            container(&api, "app").build().id
        );
    }

    #[test]
    fn derived_values_have_the_shapes_runtimes_use() {
        let p = pod("web").build();
        assert!(p.id.len() == 64 && p.id.chars().all(|c| c.is_ascii_hexdigit()));
        let groups: Vec<usize> = p.uid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&p.uid[14..15], "4");
        assert!((1000..65_000).contains(&p.pid));
        assert_eq!(
            p.linux.cgroup_parent,
            format!("kubepods-besteffort-pod{}.slice", p.uid.replace('-', "_"))
        );
        assert_eq!(
            p.linux.cgroups_path,
            format!("{}:cri-containerd:{}", p.linux.cgroup_parent, p.id)
        );
        assert!(p.ips[0].starts_with("10.244."));
        assert_eq!(p.labels["io.kubernetes.pod.uid"], p.uid);
    }

    #[test]
    fn container_joins_the_sandbox_namespaces_through_its_pid() {
        let p = pod("web").pid(4321).build();
        let c = container(&p, "nginx").build();
        let net = c
            .linux
            .namespaces
            .iter()
            .find(|n| n.type_ == "network")
            .unwrap();
        assert_eq!(net.path, "/proc/4321/ns/net");
        let pid_ns = c
            .linux
            .namespaces
            .iter()
            .find(|n| n.type_ == "pid")
            .unwrap();
        assert!(pid_ns.path.is_empty());
    }

    #[test]
    fn created_container_has_no_pid_and_running_one_has_one() {
        let p = pod("web").build();
        let created = container(&p, "c").build();
        assert_eq!((created.pid, created.started_at), (0, 0));
        let running = container(&p, "c")
            .state(ContainerState::CONTAINER_RUNNING)
            .build();
        assert!(running.pid > 0);
        assert!(running.started_at > running.created_at);
        assert_eq!(running.finished_at, 0);
        let chosen = container(&p, "c")
            .state(ContainerState::CONTAINER_RUNNING)
            .pid(7)
            .build();
        assert_eq!(chosen.pid, 7);
    }

    #[test]
    fn overrides_replace_defaults_and_additions_come_last() {
        let p = pod("web")
            .id("pod-1")
            .uid("u-1")
            .label("io.kubernetes.pod.name", "other")
            .runtime_handler("kata")
            .cgroup_parent("kubepods-pod_u_1.slice")
            .ips(&["192.0.2.1", "2001:db8::1"])
            .build();
        assert_eq!((p.id.as_str(), p.uid.as_str()), ("pod-1", "u-1"));
        assert_eq!(p.labels["io.kubernetes.pod.name"], "other");
        assert_eq!(p.runtime_handler, "kata");
        assert_eq!(p.linux.cgroup_parent, "kubepods-pod_u_1.slice");
        assert_eq!(p.ips, ["192.0.2.1", "2001:db8::1"]);

        let c = container(&p, "app")
            .id("ctr-1")
            .args(&["sleep", "1"])
            .env("A", "1")
            .device(LinuxDevice::char_device("/dev/fuse", 10, 229))
            .rlimit(POSIXRlimit::limit("RLIMIT_NOFILE", 10, 5))
            .hooks(Hooks::new().with_poststop(crate::api::Hook::command("/bin/true", ["true"])))
            .cpu_shares(1024)
            .cpuset("0-3", "0")
            .image("registry.example.com/app:1.0")
            .label("tier", "backend")
            .annotation("note", "x")
            .build();
        assert_eq!(c.id, "ctr-1");
        assert_eq!(c.pod_sandbox_id, "pod-1");
        assert_eq!(c.args, ["sleep", "1"]);
        assert_eq!(c.env.last().unwrap(), "A=1");
        assert_eq!(c.linux.devices[0].path, "/dev/fuse");
        assert_eq!(c.rlimits[0].type_, "RLIMIT_NOFILE");
        assert_eq!(c.hooks.poststop.len(), 1);
        let cpu = &c.linux.resources.cpu;
        assert_eq!(cpu.shares.value(), Some(1024));
        assert_eq!((cpu.cpus.as_str(), cpu.mems.as_str()), ("0-3", "0"));
        assert_eq!(c.image.name, "registry.example.com/app:1.0");
        assert_eq!(
            c.annotations["io.kubernetes.cri.image-name"],
            "registry.example.com/app:1.0"
        );
        assert_eq!(c.labels["tier"], "backend");
        assert_eq!(c.annotations["note"], "x");
        assert_eq!(
            c.linux.cgroups_path,
            "kubepods-pod_u_1.slice:cri-containerd:ctr-1"
        );
    }

    #[test]
    fn default_container_is_best_effort_without_memory_limit() {
        let c = container(&pod("web").build(), "nginx").build();
        let resources = &c.linux.resources;
        assert_eq!(resources.memory.limit.value(), None);
        assert_eq!(resources.cpu.shares.value(), Some(2));
        assert_eq!(resources.cpu.quota.value(), None);
        assert_eq!(c.linux.oom_score_adj.value(), Some(1000));
        assert!(c.hooks.is_none() && c.rlimits.is_empty() && c.CDI_devices.is_empty());
        let destinations: Vec<&str> = c.mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(destinations[0], "/proc");
        assert!(destinations.contains(&"/etc/resolv.conf"));
        let token = c.mounts.last().unwrap();
        assert_eq!(
            token.destination,
            "/var/run/secrets/kubernetes.io/serviceaccount"
        );
        assert!(token.options.iter().any(|o| o == "ro"));
    }

    #[test]
    fn fixtures_survive_the_wire() {
        let p = pod("web").build();
        let c = container(&p, "nginx")
            .state(ContainerState::CONTAINER_STOPPED)
            .build();
        let bytes = c.write_to_bytes().unwrap();
        assert_eq!(Container::parse_from_bytes(&bytes).unwrap(), c);
        let bytes = p.write_to_bytes().unwrap();
        assert_eq!(PodSandbox::parse_from_bytes(&bytes).unwrap(), p);
    }
}
