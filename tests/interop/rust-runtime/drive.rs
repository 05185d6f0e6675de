//! Driving one plugin or a set through a whole pod and container
//! lifecycle, and checking a handle's identity.

use crate::*;

// ---------------------------------------------------------------------------
// One plugin or a set, through the whole lifecycle.

pub(crate) enum Target<'a> {
    One(&'a PluginHandle),
    Set(&'a PluginSet),
}

impl Target<'_> {
    pub(crate) fn create(
        &self,
        pod: &PodSandbox,
        c: &Container,
    ) -> nri::Result<CreateContainerReply> {
        match self {
            Target::One(h) => h.create_container(pod, c),
            Target::Set(s) => s.create_container(pod, c).map(CreateContainerReply::from),
        }
    }

    pub(crate) fn update(
        &self,
        pod: &PodSandbox,
        c: &Container,
        r: &LinuxResources,
    ) -> nri::Result<UpdateContainerResponse> {
        match self {
            Target::One(h) => h.update_container(pod, c, r),
            Target::Set(s) => s.update_container(pod, c, r),
        }
    }

    pub(crate) fn update_pod(&self, pod: &PodSandbox, r: &LinuxResources) -> nri::Result<()> {
        match self {
            Target::One(h) => h.update_pod_sandbox(pod, r, r),
            Target::Set(s) => s.update_pod_sandbox(pod, r, r),
        }
    }

    pub(crate) fn stop(
        &self,
        pod: &PodSandbox,
        c: &Container,
    ) -> nri::Result<StopContainerResponse> {
        match self {
            Target::One(h) => h.stop_container(pod, c),
            Target::Set(s) => s.stop_container(pod, c),
        }
    }

    pub(crate) fn state(
        &self,
        ev: Event,
        pod: &PodSandbox,
        c: Option<&Container>,
    ) -> nri::Result<()> {
        match self {
            Target::One(h) => h.state_change(ev, pod, c),
            Target::Set(s) => s.state_change(ev, pod, c),
        }
    }
}

pub(crate) struct Lifecycle {
    pub(crate) create: CreateContainerReply,
    pub(crate) update: UpdateContainerResponse,
    pub(crate) stop: StopContainerResponse,
}

/// Every event in lifecycle order for one pod and one container (built
/// afresh by `mk` for each call); returns the replies and the expected
/// plugin log lines.
pub(crate) fn lifecycle(
    t: &Target<'_>,
    pod: &PodSandbox,
    mk: &dyn Fn() -> Container,
) -> R<(Lifecycle, Vec<Expect>)> {
    use ContainerState::{
        CONTAINER_CREATED as CREATED, CONTAINER_RUNNING as RUNNING, CONTAINER_STOPPED as STOPPED,
    };
    let (p, c) = (pod.id.as_str(), mk().id);
    let mut want = vec![ex("RunPodSandbox", p, "-")];
    if pod_updates() {
        want.push(ex("UpdatePodSandbox", p, "-"));
        want.push(ex("PostUpdatePodSandbox", p, "-"));
    }
    want.extend([
        ex("CreateContainer", p, &c),
        ex("PostCreateContainer", p, &c),
        ex("StartContainer", p, &c),
        ex("PostStartContainer", p, &c),
        ex("UpdateContainer", p, &c),
        ex("PostUpdateContainer", p, &c),
        ex("StopContainer", p, &c),
        ex("RemoveContainer", p, &c),
        ex("StopPodSandbox", p, "-"),
        ex("RemovePodSandbox", p, "-"),
    ]);
    let new_res = LinuxResources {
        memory: MessageField::some(LinuxMemory {
            limit: optional(512 << 20),
            ..Default::default()
        }),
        cpu: MessageField::some(LinuxCPU {
            shares: optional(204),
            quota: optional(40000),
            period: optional(100000),
            ..Default::default()
        }),
        ..Default::default()
    };
    let step = |name: &str, r: nri::Result<()>| r.map_err(|e| format!("{name}: {e}"));
    step("RunPodSandbox", t.state(Event::RUN_POD_SANDBOX, pod, None))?;
    if pod_updates() {
        step("UpdatePodSandbox", t.update_pod(pod, &new_res))?;
        step(
            "PostUpdatePodSandbox",
            t.state(Event::POST_UPDATE_POD_SANDBOX, pod, None),
        )?;
    }
    let create = t
        .create(pod, &mk())
        .map_err(|e| format!("CreateContainer: {e}"))?;
    step(
        "PostCreateContainer",
        t.state(
            Event::POST_CREATE_CONTAINER,
            pod,
            Some(&with_state(mk(), CREATED)),
        ),
    )?;
    step(
        "StartContainer",
        t.state(
            Event::START_CONTAINER,
            pod,
            Some(&with_state(mk(), CREATED)),
        ),
    )?;
    step(
        "PostStartContainer",
        t.state(
            Event::POST_START_CONTAINER,
            pod,
            Some(&with_state(mk(), RUNNING)),
        ),
    )?;
    let update = t
        .update(pod, &with_state(mk(), RUNNING), &new_res)
        .map_err(|e| format!("UpdateContainer: {e}"))?;
    step(
        "PostUpdateContainer",
        t.state(
            Event::POST_UPDATE_CONTAINER,
            pod,
            Some(&with_state(mk(), RUNNING)),
        ),
    )?;
    let stop = t
        .stop(pod, &with_state(mk(), RUNNING))
        .map_err(|e| format!("StopContainer: {e}"))?;
    step(
        "RemoveContainer",
        t.state(
            Event::REMOVE_CONTAINER,
            pod,
            Some(&with_state(mk(), STOPPED)),
        ),
    )?;
    step(
        "StopPodSandbox",
        t.state(Event::STOP_POD_SANDBOX, pod, None),
    )?;
    step(
        "RemovePodSandbox",
        t.state(Event::REMOVE_POD_SANDBOX, pod, None),
    )?;
    Ok((
        Lifecycle {
            create,
            update,
            stop,
        },
        want,
    ))
}

pub(crate) fn check_handle(h: &PluginHandle, name: &str, launched: bool) -> R {
    ensure!(
        h.name() == name,
        "plugin name {:?}, want {name:?}",
        h.name()
    );
    let (idx, base) = name.split_once('-').unwrap_or_default();
    ensure!(
        h.index() == idx && h.base_name() == base,
        "{name}: index {:?} base {:?}",
        h.index(),
        h.base_name()
    );
    ensure!(
        h.is_launched() == launched,
        "{name}: launched={}, want {launched}",
        h.is_launched()
    );
    ensure!(
        h.pid().is_some() == launched,
        "{name}: pid {:?} (launched={launched})",
        h.pid()
    );
    ensure!(
        h.is_connected(),
        "{name}: not connected: {:?}",
        h.drop_reason()
    );
    ensure!(
        h.events() == nri().valid_events(),
        "{name}: subscribed to {} (0x{:x}), want every event of NRI {}",
        h.events(),
        h.events().bits(),
        nri()
    );
    Ok(())
}

/// True when the emulated version has the pod update events (v0.10+).
pub(crate) fn pod_updates() -> bool {
    nri().valid_events().is_set(Event::UPDATE_POD_SANDBOX)
}

/// True when the emulated version still relays a request to a plugin whose
/// connection closed earlier, instead of skipping it (before v0.12.5): the
/// request meets the closed connection and goes on without the plugin.
pub(crate) fn relays_to_closed_plugins() -> bool {
    !nri_since(0, 12, 5)
}

/// True when a CreateContainer that finds a validator closed (dead, or
/// dropped earlier in the same request) fails with `validator plugin
/// NN-name failed: ...` (v0.10 to v0.12.4: the validation request still
/// goes to it). The contract plugins validate by default from v0.10.
pub(crate) fn dead_validator_fails() -> bool {
    pod_updates() && relays_to_closed_plugins()
}

/// Checks that a CreateContainer failed because the closed validator
/// `plugin` could not validate it.
pub(crate) fn expect_dead_validator<T: std::fmt::Debug>(
    what: &str,
    plugin: &str,
    r: nri::Result<T>,
) -> R {
    let want = format!("validator plugin {plugin} failed: ");
    match r {
        Err(nri::Error::Handler(m)) if m.starts_with(&want) => Ok(()),
        other => Err(format!(
            "{what}: {other:?}, want \"{want}...\" (before v0.12.5 a closed validator is still asked to validate)"
        )),
    }
}
