//! The receiver itself: binds its listener in `start`, serves the endpoint until shutdown in
//! `run`.

use std::sync::Arc;

use sluice_pipeline::factory::{ComponentContext, Receiver, ReceiverRunContext};
use sluice_pipeline::ReceiverError;
use tokio::net::TcpListener;

use super::config::GithubReceiverConfig;
use super::http::{router, WebhookHandler};

/// The `github` receiver: an HTTP server for GitHub webhook deliveries.
pub struct GithubReceiver {
    config: GithubReceiverConfig,
    ctx: ComponentContext,
    listener: Option<TcpListener>,
}

impl GithubReceiver {
    /// A receiver that binds nothing until `start`.
    pub fn new(config: GithubReceiverConfig, ctx: ComponentContext) -> GithubReceiver {
        GithubReceiver {
            config,
            ctx,
            listener: None,
        }
    }

    async fn bind(&mut self) -> Result<(), ReceiverError> {
        if self.listener.is_some() {
            return Ok(());
        }
        let listener = sluice_pipeline::http::bind(&self.config.endpoint).await?;
        let addr = listener.local_addr().map_err(|source| ReceiverError::Io {
            what: format!("cannot read the bound address of {}", self.config.endpoint),
            source,
        })?;
        self.ctx.report_endpoint("http", addr);
        if !self.config.verifies_signatures() {
            tracing::warn!(
                component_id = %self.ctx.id,
                endpoint = %addr,
                "No webhook secret is configured and `insecure_skip_verify` is set: deliveries \
                 are accepted without checking their signature."
            );
        }
        self.listener = Some(listener);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Receiver for GithubReceiver {
    async fn start(&mut self) -> Result<(), ReceiverError> {
        self.bind().await
    }

    async fn run(mut self: Box<Self>, ctx: ReceiverRunContext) -> Result<(), ReceiverError> {
        // `run` without `start` (not what the runtime does) still works.
        self.bind().await?;
        let Some(listener) = self.listener.take() else {
            return Ok(());
        };
        let handler = Arc::new(WebhookHandler::new(
            &self.config,
            &ctx.outputs,
            self.ctx.telemetry.clone(),
        ));
        let router = router(&self.config, handler);
        let refused = self
            .ctx
            .telemetry
            .counter_named(sluice_pipeline::http::REFUSED_CONNECTIONS);
        sluice_pipeline::http::serve(listener, router, ctx.shutdown, refused).await
    }
}
