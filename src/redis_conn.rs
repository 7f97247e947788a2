//! Connections to Redis, shared by the router's state, the response cache and the gateway's
//! limits.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::{Error, Result};

/// A connection to Redis at `url`, made now so that a wrong URL or a Redis that is down is
/// reported at start-up. Few, short retries: calls must not stall on a Redis that is away.
pub(crate) async fn connect(url: &str) -> Result<ConnectionManager> {
    let client = redis::Client::open(url).map_err(|e| Error::Config(format!("redis URL `{url}`: {e}")))?;
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    ConnectionManager::new_with_config(client, config).await.map_err(Error::redis)
}
