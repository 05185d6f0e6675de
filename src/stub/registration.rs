//! Registering with the runtime: who the plugin is, the timeouts that
//! bound registration and requests, and waiting until the runtime's
//! Configure has been answered.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use protobuf::Message;

use crate::api::rpc::{self, Rpc};
use crate::api::{self, PluginId, RegisterPluginRequest};
use crate::locking::lock;
use crate::log_text::Escape;
use crate::ttrpc::Client;
use crate::{Error, Result};

/// The timeouts in force: the builder's until Configure tells the runtime's.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    /// RegisterPlugin and Configure together.
    pub(super) registration: Duration,
    /// Each request, and unsolicited updates.
    pub(super) request: Duration,
}

impl Timeouts {
    /// Takes the runtime's timeouts from Configure, in milliseconds; a
    /// value that is not positive keeps the current one.
    pub(super) fn update_from_configure(&mut self, registration_ms: i64, request_ms: i64) {
        if let Ok(ms @ 1..) = u64::try_from(registration_ms) {
            self.registration = Duration::from_millis(ms);
        }
        if let Ok(ms @ 1..) = u64::try_from(request_ms) {
            self.request = Duration::from_millis(ms);
        }
    }
}

/// Hands the outcome of Configure to the `start()` waiting for it.
#[derive(Default)]
pub(super) struct ConfigureWait {
    /// The waiting `start()`'s end of the channel, while one waits.
    waiter: Mutex<Option<Sender<Result<()>>>>,
    /// Why Configure failed, recorded before its reply is written.
    failure: Mutex<Option<Error>>,
}

impl ConfigureWait {
    /// Starts waiting for a new connection's Configure.
    pub(super) fn arm(&self) -> Receiver<Result<()>> {
        let (tx, rx) = crossbeam_channel::bounded(2);
        *lock(&self.waiter) = Some(tx);
        lock(&self.failure).take();
        rx
    }

    /// Records why Configure failed, for `start()` to report.
    pub(super) fn record_failure(&self, e: Error) {
        *lock(&self.failure) = Some(e);
    }

    /// Tells the waiter the outcome: the recorded failure if there is one,
    /// else `closed` (the connection closed first) or success.
    pub(super) fn finish(&self, closed: Option<&str>) {
        if let Some(tx) = lock(&self.waiter).take() {
            let outcome = match (lock(&self.failure).take(), closed) {
                (Some(failure), _) => Err(failure),
                (None, Some(reason)) => Err(Error::ConnectionClosed(reason.to_string())),
                (None, None) => Ok(()),
            };
            let _ = tx.try_send(outcome);
        }
    }
}

/// Calls RegisterPlugin, then waits for Configure, both within `timeout`.
pub(super) fn register_and_wait(
    client: &Client,
    identity: &PluginId,
    timeout: Duration,
    configured: Receiver<Result<()>>,
) -> Result<()> {
    let started = Instant::now();
    let plugin = identity.full_name();
    log::debug!(
        "plugin {}: registering (NRI {})",
        Escape(&plugin),
        api::NRI_VERSION
    );
    let req = RegisterPluginRequest {
        plugin_name: identity.name.clone(),
        plugin_idx: identity.index.clone(),
        NRI_version: api::NRI_VERSION.to_string(),
        ..Default::default()
    };
    match call(client, rpc::REGISTER_PLUGIN, &req, Some(timeout)) {
        Ok(_) => {}
        Err(Error::Status { message, .. }) => {
            return Err(Error::RegistrationRefused { plugin, message })
        }
        Err(e) => return Err(e),
    }
    let left = timeout.saturating_sub(started.elapsed());
    match configured.recv_timeout(left) {
        Ok(r) => r,
        Err(_) => Err(Error::ConfigureTimeout { plugin, timeout }),
    }
}

/// Calls a method of the runtime over `client`, the messages checked
/// against the method.
pub(super) fn call<Req: Message, Resp: Message>(
    client: &Client,
    rpc: Rpc<Req, Resp>,
    req: &Req,
    timeout: Option<Duration>,
) -> Result<Resp> {
    client.call(rpc.service, rpc.method, req, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_timeouts_replace_only_positive_values() {
        let mut t = Timeouts {
            registration: Duration::from_secs(5),
            request: Duration::from_secs(2),
        };
        t.update_from_configure(0, -1);
        assert_eq!(t.registration, Duration::from_secs(5));
        assert_eq!(t.request, Duration::from_secs(2));
        t.update_from_configure(1500, 250);
        assert_eq!(t.registration, Duration::from_millis(1500));
        assert_eq!(t.request, Duration::from_millis(250));
    }

    #[test]
    fn a_recorded_failure_wins_over_a_close_and_is_reported_once() {
        let wait = ConfigureWait::default();
        let rx = wait.arm();
        wait.record_failure(Error::Config("bad".into()));
        wait.finish(Some("gone"));
        assert!(matches!(rx.try_recv(), Ok(Err(Error::Config(_)))));
        wait.finish(None);
        assert!(rx.try_recv().is_err());
        let rx = wait.arm();
        wait.finish(Some("gone"));
        assert!(matches!(rx.try_recv(), Ok(Err(Error::ConnectionClosed(r))) if r == "gone"));
    }
}
