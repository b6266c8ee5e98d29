//! How to check: the options of one `lrwatch check` run and their defaults.

use std::time::Duration;

use url::Url;

/// The default budget of a whole run.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);
/// The default wait of the long-polls that check holding, in seconds.
pub const DEFAULT_WAIT: u64 = 2;

/// How to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// A shell command that changes the resource (`sh -c`); `None` skips change-dependent
    /// requirements.
    pub trigger: Option<String>,
    /// The time the whole run may take.
    pub budget: Duration,
    /// The wait of the long-polls that check holding, in seconds.
    pub wait: u64,
    /// Extra request headers (`-H`), sent only to the resource's origin.
    pub headers: Vec<(String, String)>,
    /// Certificate authorities (DER) to trust instead of the bundled roots (`--cacert`).
    pub ca_certs: Option<Vec<Vec<u8>>>,
    /// Where to receive webhook notifications (`--callback-listen`); with neither this nor
    /// `callback_url`, webhooks are skipped.
    pub callback_listen: Option<String>,
    /// The URL servers should notify, when not the listener's own (`--callback-url`).
    pub callback_url: Option<Url>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            trigger: None,
            budget: DEFAULT_BUDGET,
            wait: DEFAULT_WAIT,
            headers: Vec::new(),
            ca_certs: None,
            callback_listen: None,
            callback_url: None,
        }
    }
}
