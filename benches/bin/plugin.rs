//! The Rust side of the benchmark: the same trivial logic as the Go bench
//! plugin (benches/go/plugin), on `nri::stub`. CreateContainer adds 2 env
//! vars, 1 mount and sets CPU shares; StartContainer and Synchronize do
//! nothing.
//!
//! `bench-plugin [-socket PATH] [-name NAME] [-idx NN] [-workers N]`; launched by a
//! runtime (NRI_PLUGIN_SOCKET set) it needs no arguments.

#[path = "common.rs"]
mod common;

use nri::api::{Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, PodSandbox};
use nri::stub::{Context, HandlerResult, Plugin, Stub};

struct Bench;

impl Plugin for Bench {
    fn events(&self) -> EventMask {
        EventMask::from_events(&[Event::CREATE_CONTAINER, Event::START_CONTAINER])
    }

    fn synchronize(
        &self,
        ctx: &Context<'_>,
        pods: Vec<PodSandbox>,
        containers: Vec<Container>,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        // Nothing to do with the state. Freeing 10,000 decoded containers
        // takes tens of milliseconds: do it after the reply is on the wire
        // (as Go's garbage collector does, off the reply's path), not here.
        ctx.after_reply(move |_| drop((pods, containers)));
        Ok(Vec::new())
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        Ok((common::adjust(), Vec::new()))
    }

    fn start_container(
        &self,
        _ctx: &Context<'_>,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> HandlerResult<()> {
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut b = Stub::builder(Bench);
    while let Some(a) = args.next() {
        let value = args.next();
        match (a.trim_start_matches('-'), value) {
            ("name", Some(v)) => b = b.plugin_name(v),
            ("idx", Some(v)) => b = b.plugin_index(v),
            ("socket", Some(v)) => b = b.socket_path(v),
            ("workers", Some(v)) => b = b.workers(v.parse().unwrap_or(4)),
            (other, _) => {
                eprintln!("bench-plugin: bad argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let stub = match b.build() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench-plugin: {e}");
            std::process::exit(1);
        }
    };
    match stub.run() {
        Ok(()) | Err(nri::Error::ConnectionClosed(_)) => {}
        Err(e) => {
            eprintln!("bench-plugin: {e}");
            std::process::exit(1);
        }
    }
}
