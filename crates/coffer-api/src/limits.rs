//! What a listener grants each client, set by the operator and read by the
//! listeners (and, for the body timeout, by every request).

use std::time::Duration;

/// What a listener grants each client: the defences against slow and
/// greedy clients (slow-loris heads, stalled bodies, idle connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once, per listener; more wait in the accept
    /// queue until one closes.
    pub max_connections: usize,
    /// Time a client has to send a whole request head. It runs from the
    /// first byte wait, so it also closes idle keep-alive connections.
    pub header_read_timeout: Duration,
    /// Longest silence allowed in the middle of a request body; the request
    /// then fails with RequestTimeout.
    pub body_read_timeout: Duration,
    /// Longest time a response may wait on a client that does not read it;
    /// the connection is then dropped.
    pub send_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
        }
    }
}
