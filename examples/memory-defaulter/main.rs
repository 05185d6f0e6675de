//! The plugin of the README: containers created without a memory limit get
//! the one their pod's annotation names.
use nri::api::{
    Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, OptionalExt, PodSandbox,
};
use nri::stub::{Context, HandlerResult, Plugin, Stub};

const KEY: &str = "memory-defaulter.example.com/limit"; // in bytes

struct MemoryDefaulter;

impl Plugin for MemoryDefaulter {
    fn events(&self) -> EventMask {
        Event::CREATE_CONTAINER.into()
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        ctr: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        let mut adjust = ContainerAdjustment::new();
        let memory = &ctr.linux.resources.memory;
        let limited = memory.limit.value().is_some_and(|l| l > 0);
        if let (false, Some(text)) = (limited, pod.annotations.get(KEY)) {
            let limit = text.parse().map_err(|e| format!("{KEY}={text:?}: {e}"))?;
            adjust.set_linux_memory_limit(limit);
        }
        Ok((adjust, Vec::new()))
    }
}

fn main() -> nri::Result<()> {
    let stub = Stub::builder(MemoryDefaulter)
        .plugin_name("memory-defaulter")
        .plugin_index("10")
        .build()?;
    stub.run() // until the runtime goes away
}
