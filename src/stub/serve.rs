//! Serving the plugin service: Configure, Synchronize and every event, each
//! turned into a call of the plugin's handler.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::plugin::{Context, HandlerError, Plugin};
use super::sync::{scan_chunk, SyncState};
use crate::api::{
    ConfigureRequest, ConfigureResponse, CreateContainerRequest, CreateContainerResponse, Empty,
    Event, StateChangeEvent, StopContainerRequest, StopContainerResponse, SynchronizeResponse,
    UpdateContainerRequest, UpdateContainerResponse, PLUGIN_SERVICE,
};
use crate::ttrpc::{encode_result, lock, Code, RequestContext, Services, Status};
use crate::{Error, Result};

use super::lifecycle::{HandlerScope, Inner, Stub};

/// Full name of the Synchronize method, for messages.
const SYNCHRONIZE: &str = "nri.pkg.api.v1alpha1.Plugin/Synchronize";

impl Stub {
    pub(super) fn services(&self) -> Services {
        let mut s = Services::new();
        let w = Arc::downgrade(&self.inner);
        s.add_unary(PLUGIN_SERVICE, "Configure", handler(&w, Stub::configure));
        s.add_method_owned(
            PLUGIN_SERVICE,
            "Synchronize",
            Box::new(handler(&w, Stub::synchronize)),
        );
        s.add_unary(PLUGIN_SERVICE, "Shutdown", handler(&w, Stub::shutdown_req));
        s.add_unary(
            PLUGIN_SERVICE,
            "CreateContainer",
            handler(&w, Stub::create_container),
        );
        s.add_unary(
            PLUGIN_SERVICE,
            "UpdateContainer",
            handler(&w, Stub::update_container),
        );
        s.add_unary(
            PLUGIN_SERVICE,
            "StopContainer",
            handler(&w, Stub::stop_container),
        );
        s.add_unary(
            PLUGIN_SERVICE,
            "StateChange",
            handler(&w, Stub::state_change),
        );
        s
    }

    fn configure(
        &self,
        rc: &RequestContext,
        req: ConfigureRequest,
    ) -> Result<ConfigureResponse, Status> {
        log::info!(
            "configuring plugin {} for runtime {}/{}",
            self.name(),
            req.runtime_name,
            req.runtime_version
        );
        {
            let mut t = lock(&self.inner.timeouts);
            if req.registration_timeout > 0 {
                t.0 = Duration::from_millis(req.registration_timeout as u64);
            }
            if req.request_timeout > 0 {
                t.1 = Duration::from_millis(req.request_timeout as u64);
            }
        }
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let result = {
            let _scope = HandlerScope::enter();
            self.inner
                .plugin
                .configure(&ctx, &req.config, &req.runtime_name, &req.runtime_version)
        };
        let result = match result {
            Err(e) => Err(handler_status(e)),
            Ok(mask) => {
                let mask = mask.filter(|m| !m.is_empty()).unwrap_or(self.inner.events);
                let extra = mask & !self.inner.events;
                if !extra.is_empty() {
                    Err(Status::new(
                        Code::Unknown,
                        format!(
                            "plugin {} subscribed to events it does not handle: {extra} (handled: {})",
                            self.name(),
                            self.inner.events
                        ),
                    ))
                } else {
                    log::info!("subscribing plugin {} to {mask}", self.name());
                    Ok(ConfigureResponse {
                        events: mask.bits(),
                        ..Default::default()
                    })
                }
            }
        };
        // Tell start() only once the reply is on the wire: on failure it
        // closes the connection, which must not overtake the reply.
        let outcome = match &result {
            Ok(_) => Ok(()),
            Err(st) => Err(Error::Handler(format!("Configure failed: {}", st.message))),
        };
        let inner = self.inner.clone();
        rc.after_reply(move || {
            if let Some(tx) = lock(&inner.configured).take() {
                let _ = tx.try_send(outcome);
            }
        });
        result
    }

    /// Synchronize, served raw: chunks are kept encoded (see [`SyncState`])
    /// and the handler runs once, on the final chunk.
    fn synchronize(&self, rc: &RequestContext, payload: Vec<u8>) -> Result<Vec<u8>, Status> {
        let scan = scan_chunk(&payload).map_err(|e| Status::new(Code::Internal, e.to_string()))?;
        let more = scan.more;
        let state = {
            let mut acc = lock(&self.inner.sync);
            let held = acc.as_ref().map_or(0, SyncState::encoded_len);
            if held.saturating_add(payload.len()) > self.inner.max_sync_bytes {
                acc.take();
                return Err(Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "plugin {}: the Synchronize state exceeds {} bytes ({held} held, a chunk of {} more)",
                        self.name(),
                        self.inner.max_sync_bytes,
                        payload.len()
                    ),
                ));
            }
            acc.get_or_insert_with(SyncState::default)
                .push_chunk(payload, scan);
            if more {
                None
            } else {
                acc.take()
            }
        };
        let Some(state) = state else {
            return encode_result(
                SYNCHRONIZE,
                &SynchronizeResponse {
                    more: true,
                    ..Default::default()
                },
            );
        };
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let update = {
            let _scope = HandlerScope::enter();
            self.inner
                .plugin
                .synchronize(&ctx, state)
                .map_err(handler_status)?
        };
        encode_result(
            SYNCHRONIZE,
            &SynchronizeResponse {
                update,
                more: false,
                ..Default::default()
            },
        )
    }

    fn shutdown_req(&self, rc: &RequestContext, _req: Empty) -> Result<Empty, Status> {
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let _scope = HandlerScope::enter();
        self.inner.plugin.shutdown(&ctx);
        Ok(Empty::new())
    }

    fn create_container(
        &self,
        rc: &RequestContext,
        req: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, Status> {
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let _scope = HandlerScope::enter();
        let (adjust, update) = self
            .inner
            .plugin
            .create_container(
                &ctx,
                req.pod.get_or_default(),
                req.container.get_or_default(),
            )
            .map_err(handler_status)?;
        Ok(CreateContainerResponse {
            adjust: protobuf::MessageField::some(adjust),
            update,
            ..Default::default()
        })
    }

    fn update_container(
        &self,
        rc: &RequestContext,
        req: UpdateContainerRequest,
    ) -> Result<UpdateContainerResponse, Status> {
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let _scope = HandlerScope::enter();
        let update = self
            .inner
            .plugin
            .update_container(
                &ctx,
                req.pod.get_or_default(),
                req.container.get_or_default(),
                req.linux_resources.get_or_default(),
            )
            .map_err(handler_status)?;
        Ok(UpdateContainerResponse {
            update,
            ..Default::default()
        })
    }

    fn stop_container(
        &self,
        rc: &RequestContext,
        req: StopContainerRequest,
    ) -> Result<StopContainerResponse, Status> {
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let _scope = HandlerScope::enter();
        let update = self
            .inner
            .plugin
            .stop_container(
                &ctx,
                req.pod.get_or_default(),
                req.container.get_or_default(),
            )
            .map_err(handler_status)?;
        Ok(StopContainerResponse {
            update,
            ..Default::default()
        })
    }

    fn state_change(&self, rc: &RequestContext, evt: StateChangeEvent) -> Result<Empty, Status> {
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let p = &self.inner.plugin;
        let pod = evt.pod.get_or_default();
        let c = evt.container.get_or_default();
        let _scope = HandlerScope::enter();
        let r = match evt.event.enum_value() {
            Ok(Event::RUN_POD_SANDBOX) => p.run_pod_sandbox(&ctx, pod),
            Ok(Event::STOP_POD_SANDBOX) => p.stop_pod_sandbox(&ctx, pod),
            Ok(Event::REMOVE_POD_SANDBOX) => p.remove_pod_sandbox(&ctx, pod),
            Ok(Event::POST_CREATE_CONTAINER) => p.post_create_container(&ctx, pod, c),
            Ok(Event::START_CONTAINER) => p.start_container(&ctx, pod, c),
            Ok(Event::POST_START_CONTAINER) => p.post_start_container(&ctx, pod, c),
            Ok(Event::POST_UPDATE_CONTAINER) => p.post_update_container(&ctx, pod, c),
            Ok(Event::REMOVE_CONTAINER) => p.remove_container(&ctx, pod, c),
            other => {
                log::debug!("plugin {}: ignoring state change {other:?}", self.name());
                Ok(())
            }
        };
        r.map_err(handler_status)?;
        Ok(Empty::new())
    }
}

fn handler<Req, Resp>(
    weak: &Weak<Inner>,
    f: fn(&Stub, &RequestContext, Req) -> Result<Resp, Status>,
) -> impl Fn(&RequestContext, Req) -> Result<Resp, Status> + Send + Sync + 'static
where
    Req: 'static,
    Resp: 'static,
{
    let weak = weak.clone();
    move |rc, req| {
        let inner = weak
            .upgrade()
            .ok_or_else(|| Status::new(Code::Unavailable, "the plugin stub is gone"))?;
        f(&Stub { inner }, rc, req)
    }
}

fn handler_status(e: HandlerError) -> Status {
    let e = match e.downcast::<Status>() {
        Ok(st) => return *st,
        Err(e) => e,
    };
    match e.downcast::<Error>() {
        Ok(err) => Status::new(
            match *err {
                Error::Handler(_) => Code::Unknown,
                ref other => other.code(),
            },
            err.to_string(),
        ),
        Err(e) => Status::new(Code::Unknown, e.to_string()),
    }
}
