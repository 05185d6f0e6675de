//! A plugin written with `nri::stub`, as a Rust author writes one, handling
//! the pod update events and validating, tested with `nri::runtime`: what
//! the runtime could not do while it judged plugins like v0.9.0.

use super::*;
use nri::api::{OptionalExt, ValidateContainerAdjustmentRequest};
use nri::stub::{Context, HandlerResult, Plugin, Stub};

/// Records the pod updates it sees; refuses a memory limit above 1 GiB.
#[derive(Default)]
struct Guard {
    seen: Mutex<Vec<String>>,
}

impl Plugin for Guard {
    fn events(&self) -> EventMask {
        EventMask::from_events(&[
            Event::RUN_POD_SANDBOX,
            Event::UPDATE_POD_SANDBOX,
            Event::POST_UPDATE_POD_SANDBOX,
            Event::VALIDATE_CONTAINER_ADJUSTMENT,
        ])
    }

    fn run_pod_sandbox(&self, _: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.seen.lock().unwrap().push(format!("run {}", pod.id));
        Ok(())
    }

    fn update_pod_sandbox(
        &self,
        _: &Context<'_>,
        pod: &PodSandbox,
        _overhead: &LinuxResources,
        resources: &LinuxResources,
    ) -> HandlerResult<()> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("update {} cpus={}", pod.id, resources.cpu.cpus));
        Ok(())
    }

    fn post_update_pod_sandbox(&self, _: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("post-update {}", pod.id));
        Ok(())
    }

    fn validate_container_adjustment(
        &self,
        _: &Context<'_>,
        req: &ValidateContainerAdjustmentRequest,
    ) -> HandlerResult<()> {
        let limit = req.adjust.linux.resources.memory.limit.value();
        match limit {
            Some(l) if l > 1 << 30 => Err(format!("memory limit {l} is over 1 GiB").into()),
            _ => Ok(()),
        }
    }
}

/// Sets the memory limit its container asks for in annotation `limit`.
struct Sizer;

impl Plugin for Sizer {
    fn events(&self) -> EventMask {
        Event::CREATE_CONTAINER.into()
    }

    fn create_container(
        &self,
        _: &Context<'_>,
        _: &PodSandbox,
        ctr: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<nri::api::ContainerUpdate>)> {
        let mut adjust = ContainerAdjustment::new();
        if let Some(l) = ctr.annotations.get("limit") {
            adjust.set_linux_memory_limit(l.parse()?);
        }
        Ok((adjust, Vec::new()))
    }
}

fn serve(
    rt: &Runtime,
    plugin: impl Plugin + 'static,
    name: &str,
    idx: &str,
) -> (PluginHandle, Stub) {
    let (handle, stub, _serving) = crate::running::serve_pair(rt, plugin, name, idx);
    (handle, stub)
}

#[test]
fn a_stub_plugin_handling_pod_updates_and_validation_is_tested_with_the_runtime() {
    let rt = test_runtime().build();
    let guard = Arc::new(Guard::default());
    let (h, guard_stub) = serve(&rt, guard.clone(), "guard", "90");
    assert_eq!(h.events(), guard.events(), "the v0.12 events are accepted");
    assert_eq!(h.plugin_nri_version(), Some(nri::api::NRI_VERSION));
    let (s, sizer_stub) = serve(&rt, Sizer, "sizer", "10");
    let set = PluginSet::new(&rt);
    set.add(h).unwrap();
    set.add(s).unwrap();

    let p = pod("p");
    set.run_pod_sandbox(&p).unwrap();
    let mut res = LinuxResources::new();
    res.cpu.mut_or_insert_default().cpus = "0-1".into();
    set.update_pod_sandbox(&p, &LinuxResources::new(), &res)
        .unwrap();
    set.post_update_pod_sandbox(&p).unwrap();
    assert_eq!(
        *guard.seen.lock().unwrap(),
        ["run p", "update p cpus=0-1", "post-update p"]
    );

    let mut small = ctr("small", "p");
    small
        .annotations
        .insert("limit".into(), (256u64 << 20).to_string());
    let merged = set.create_container(&p, &small).expect("accepted");
    assert_eq!(
        merged.adjust.linux.resources.memory.limit.value(),
        Some(256 << 20)
    );

    let mut big = ctr("big", "p");
    big.annotations
        .insert("limit".into(), (4u64 << 30).to_string());
    match set.create_container(&p, &big) {
        Err(Error::Rejected(m)) => assert_eq!(
            m,
            "validator \"90-guard\" rejected container adjustment, reason: memory limit \
             4294967296 is over 1 GiB"
        ),
        other => panic!("expected the guard's rejection, got {other:?}"),
    }
    assert_eq!(set.len(), 2);
    guard_stub.stop();
    sizer_stub.stop();
}

#[test]
fn the_same_stub_plugin_against_a_v0_9_runtime_subscribes_to_what_it_can_deliver() {
    let rt = test_runtime().emulate(Emulation::V0_9_0).build();
    let guard = Arc::new(Guard::default());
    let (h, stub) = serve(&rt, guard.clone(), "guard", "90");
    assert_eq!(
        h.events(),
        Event::RUN_POD_SANDBOX.mask(),
        "the stub leaves out the events a v0.9.0 runtime cannot deliver"
    );
    h.run_pod_sandbox(&pod("p")).unwrap();
    assert!(matches!(
        h.update_pod_sandbox(&pod("p"), &LinuxResources::new(), &LinuxResources::new()),
        Err(Error::State(_))
    ));
    assert_eq!(*guard.seen.lock().unwrap(), ["run p"]);
    stub.stop();
}
