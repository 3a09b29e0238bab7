//! Graceful shutdown: one token cancelled on SIGTERM (what Kubernetes sends) or SIGINT.
//!
//! The HTTP server stops accepting and drains in-flight requests when the token fires;
//! background tasks (outbox relays, listeners) select on it and finish their current item.

use tokio_util::sync::CancellationToken;

/// Resolves on the first SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

/// A token cancelled when a shutdown signal arrives.
pub fn token_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        signal().await;
        trigger.cancel();
    });
    token
}

/// The background tasks of a service (listeners, relays, schedulers), stopped together
/// after the HTTP server has drained. Dropped without [`Self::stop`] (a start-up attempt
/// that failed half-way), they are told to stop all the same.
pub struct BackgroundTasks {
    token: CancellationToken,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Default for BackgroundTasks {
    fn default() -> Self {
        Self::new()
    }
}

impl BackgroundTasks {
    pub fn new() -> Self {
        Self {
            token: CancellationToken::new(),
            handles: Vec::new(),
        }
    }

    /// The token the tasks watch: cancelled by [`Self::stop`].
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    pub fn push(&mut self, handle: tokio::task::JoinHandle<()>) {
        self.handles.push(handle);
    }

    /// Asks every task to finish its current item and waits (bounded) for them.
    pub async fn stop(mut self) {
        self.token.cancel();
        let all = futures::future::join_all(std::mem::take(&mut self.handles));
        if tokio::time::timeout(std::time::Duration::from_secs(10), all)
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop within 10 s");
        }
    }
}

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        self.token.cancel();
    }
}
