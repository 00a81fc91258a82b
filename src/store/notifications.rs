//! Change notifications between the requests of one process and across replicas. A writer
//! publishes the key of what changed; watchers (a waiting QR page's WebSocket) wake and
//! re-read the row, which is the only source of truth: a lost notification delays a
//! watcher until its next periodic re-read, it never loses state.
//!
//! SQLite is one process, so an in-process broadcast suffices. On PostgreSQL every replica
//! LISTENs on one channel and `pg_notify` reaches all of them, the publisher included.

use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use tokio::sync::broadcast;

use super::{Backend, Store, StoreResult};

const CHANNEL: &str = "tessera_changes";

#[derive(Clone)]
pub struct Changes {
    local: broadcast::Sender<String>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            local: broadcast::channel(1024).0,
        }
    }
}

impl Changes {
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.local.subscribe()
    }

    /// Tells every watcher of `key`, in this process and (on PostgreSQL) in every replica.
    pub async fn publish(&self, store: &Store, key: &str) -> StoreResult<()> {
        let _ = self.local.send(key.to_owned());
        if let Backend::Postgres(pool) = &store.backend {
            let mut conn = pool.get().await?;
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<Text, _>(CHANNEL)
                .bind::<Text, _>(key)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// On PostgreSQL, forwards the channel's notifications from other replicas to this
    /// process's watchers until `stop`; reconnects after a lost connection.
    pub fn spawn_listener(&self, store: &Store, mut stop: tokio::sync::watch::Receiver<bool>) {
        if !matches!(store.backend, Backend::Postgres(_)) {
            return;
        }
        let url = store.url().to_owned();
        let local = self.local.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    ended = listen(&url, &local) => {
                        if let Err(e) = ended {
                            tracing::warn!(error = %e, "change notifications interrupted; reconnecting");
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
}

async fn listen(url: &str, local: &broadcast::Sender<String>) -> Result<(), String> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .map_err(|e| e.to_string())?;
    diesel::sql_query(format!("LISTEN {CHANNEL}"))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut notifications = std::pin::pin!(conn.notifications_stream());
    while let Some(notification) = notifications.next().await {
        let notification = notification.map_err(|e| e.to_string())?;
        let _ = local.send(notification.payload);
    }
    Err("the listening connection closed".into())
}
