//! Supervised mode: reconnecting to a restarted runtime with backoff.

use std::time::{Duration, Instant};

use crate::api;
use crate::{Error, Result};

use super::lifecycle::{Ended, Stub};
use crate::log_text::Escape;

impl Stub {
    /// Runs an external plugin for as long as [`Stub::stop`] is not called:
    /// waits for the runtime's socket, connects, registers and serves; when
    /// the runtime goes away (restart, upgrade) it reconnects with bounded
    /// exponential backoff, registers again and is synchronized again. Each
    /// lost connection is logged and runs the on-close callback.
    ///
    /// A plugin launched by the runtime (`NRI_PLUGIN_SOCKET`) cannot
    /// reconnect: when its connection ends, this returns `Ok(())`.
    pub fn run_supervised(&self, backoff: Backoff) -> Result<()> {
        let gen = self.inner.stop.generation();
        let stopped = || self.inner.stop.generation() != gen;
        let mut delay = backoff.initial;
        let mut attempt: u64 = 0;
        loop {
            if stopped() {
                return Ok(());
            }
            attempt += 1;
            match self.start() {
                Ok(()) => {
                    delay = backoff.initial;
                    attempt = 0;
                    let launched = self.inner.connection.launched();
                    match self.wait_ended() {
                        Ended::Stopped => return Ok(()),
                        // Already logged when the connection closed.
                        Ended::Lost(_) if launched => return Ok(()),
                        Ended::Lost(_) => {
                            log::info!(
                                "plugin {}: reconnecting to the runtime",
                                Escape(self.name())
                            );
                        }
                    }
                }
                Err(e) => {
                    if let Some(max) = backoff.max_attempts {
                        if attempt >= max {
                            return Err(e);
                        }
                    }
                    if matches!(e, Error::Config(_))
                        && std::env::var_os(api::PLUGIN_SOCKET_ENV_VAR).is_some()
                    {
                        return Err(e);
                    }
                    // Retrying cannot make this runtime deliver the events.
                    if matches!(e, Error::EventsUnavailable { .. }) {
                        return Err(e);
                    }
                    log::warn!(
                        "plugin {}: connecting failed ({}); retrying in {delay:?} (attempt {attempt})",
                        Escape(self.name()),
                        Escape(&e)
                    );
                }
            }
            // Sleep, but wake at once on stop().
            if self.inner.stop.sleep_until(Instant::now() + delay, gen) {
                return Ok(());
            }
            delay = (delay * 2).min(backoff.max);
        }
    }
}

/// Reconnection policy of [`Stub::run_supervised`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// First delay after a failed attempt.
    pub initial: Duration,
    /// Longest delay between attempts.
    pub max: Duration,
    /// Give up after this many failed attempts in a row (`None`: never).
    pub max_attempts: Option<u64>,
}

/// 100 ms after the first failed attempt, doubling up to 10 s between
/// attempts, and no limit on attempts.
impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            max_attempts: None,
        }
    }
}
