//! The hubs of one follow: the first follower to join an endpoint starts its hub thread, which
//! runs the transport's connection (`websocket`, `multiplex_wait`, `multiplex_stream`); the
//! rest join it there (see `hub` for what they say to each other).

use std::collections::HashMap;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

use url::Url;

use super::hub::{HubInput, Sub};
use super::Shared;
use crate::mechanism::Mechanism;

/// The hubs of one follow, by mechanism and endpoint.
#[derive(Debug, Default)]
pub(super) struct Hubs {
    map: Mutex<HashMap<(Mechanism, String), Sender<HubInput>>>,
}

impl Hubs {
    /// Subscribes `sub` through the hub for `mechanism` at `endpoint`, starting it if needed.
    /// `rel` is the relation that advertised the endpoint (its request form may differ).
    pub(super) fn join(
        &self,
        shared: &Arc<Shared>,
        mechanism: Mechanism,
        rel: &str,
        endpoint: &Url,
        sub: Sub,
    ) -> Sender<HubInput> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = (mechanism, endpoint.to_string());
        let mut input = HubInput::Subscribe(sub);
        if let Some(tx) = map.get(&key) {
            match tx.send(input) {
                Ok(()) => return tx.clone(),
                // The hub ended (it cannot, but never leave a follower stranded): start anew.
                Err(mpsc::SendError(back)) => input = back,
            }
        }
        let (tx, rx) = mpsc::channel();
        let _ = tx.send(input);
        let hub_shared = Arc::clone(shared);
        let hub_tx = tx.clone();
        let endpoint = endpoint.clone();
        let rel = rel.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("{mechanism} {endpoint}"))
            .spawn(move || match mechanism {
                Mechanism::MultiplexWs | Mechanism::MultiplexSocket => {
                    super::websocket::run(&hub_shared, mechanism, &endpoint, &rx, &hub_tx)
                }
                Mechanism::MultiplexWait => {
                    super::multiplex_wait::run(&hub_shared, &rel, &endpoint, &rx)
                }
                _ => super::multiplex_stream::run(&hub_shared, &endpoint, &rx, hub_tx),
            });
        if spawned.is_ok() {
            map.insert(key, tx.clone());
        }
        tx
    }
}
