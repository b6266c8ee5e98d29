//! The state every request may need: the store, the switches, the webhook registry. The
//! handlers of objects, the collection and sockets take it; the modules whose state it holds
//! (`store`, `dialect`, `callbacks`, and `multiplex` and `streams` below `callbacks`) take only
//! the parts they use, so none of them imports it back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::callbacks;
use super::dialect::ServerConfig;
use super::store::Store;

/// Everything a request may need: the store, the switches, the webhook registry.
pub(crate) struct App {
    /// The resources.
    pub(crate) store: Arc<Store>,
    /// The switches.
    pub(crate) cfg: ServerConfig,
    /// Webhook subscriptions and their delivery worker.
    pub(crate) callbacks: callbacks::Registry,
    /// Responses served so far under the `unstable-etag` fault: each gets its own ETag text.
    unstable: AtomicU64,
}

impl App {
    /// The state of one server.
    pub(crate) fn new(cfg: ServerConfig) -> Arc<App> {
        let store = Arc::new(Store::new(cfg.history));
        let callbacks = callbacks::Registry::new(&cfg);
        Arc::new(App {
            store,
            cfg,
            callbacks,
            unstable: AtomicU64::new(0),
        })
    }

    /// The number of the next response served under the `unstable-etag` fault.
    pub(crate) fn next_unstable(&self) -> u64 {
        self.unstable.fetch_add(1, Ordering::Relaxed)
    }
}
