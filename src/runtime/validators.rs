//! Validation of a merged container adjustment (NRI v0.10+): every plugin
//! subscribed to ValidateContainerAdjustment gets the pristine container,
//! the merged adjustment and updates, the field owners and the plugins
//! that took part, all at once; one rejection or failure fails the
//! creation.
//!
//! Upstream's built-in default validator (configured in the runtime, not a
//! plugin: it can refuse adjustments of OCI hooks, seccomp policies,
//! namespaces, sysctls and others, and require given plugins to take part)
//! is not emulated: only plugins validate here.

use crate::api::{rpc, Event, ValidateContainerAdjustmentRequest};
use crate::{Error, Result};

use super::handle::PluginHandle;
use super::relay::Sent;

/// Sends `req` to every validator concurrently and waits for all of them.
/// The first failure in validator order fails the creation (upstream
/// returns whichever it collects first).
pub(crate) fn validate(
    validators: &[&PluginHandle],
    req: &ValidateContainerAdjustmentRequest,
) -> Result<()> {
    let outcomes: Vec<Result<()>> = std::thread::scope(|s| {
        let running: Vec<_> = validators
            .iter()
            .map(|p| s.spawn(move || validate_one(p, req)))
            .collect();
        running
            .into_iter()
            .zip(validators)
            .map(|(t, p)| {
                t.join().unwrap_or_else(|_| {
                    Err(Error::Handler(format!(
                        "validator plugin {} failed: internal error: the validation thread panicked",
                        p.name()
                    )))
                })
            })
            .collect()
    });
    outcomes
        .into_iter()
        .collect::<Result<Vec<()>>>()
        .map(|_| ())
}

fn validate_one(p: &PluginHandle, req: &ValidateContainerAdjustmentRequest) -> Result<()> {
    let (rpc, event) = (
        rpc::VALIDATE_CONTAINER_ADJUSTMENT,
        Event::VALIDATE_CONTAINER_ADJUSTMENT,
    );
    match p.relay.request(rpc, Some(event), req, false) {
        Ok(Sent::Reply(verdict)) => verdict.validation_result(p.name()),
        Ok(Sent::NotSubscribed) => Ok(()),
        Err(e) => Err(Error::Handler(format!(
            "validator plugin {} failed: {e}",
            p.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ValidateContainerAdjustmentResponse;

    #[test]
    fn a_rejection_without_reason_is_reported_as_upstream_does() {
        let v = ValidateContainerAdjustmentResponse::rejection("");
        let e = v.validation_result("10-v").unwrap_err();
        assert!(matches!(e, Error::Rejected(_)));
        assert_eq!(
            e.to_string(),
            "validator \"10-v\" rejected container adjustment, reason: unknown rejection reason"
        );
    }
}
