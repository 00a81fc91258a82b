//! CPU-heavy work (RSA signing, argon2) runs here, never on the async runtime's worker
//! threads: a blocking task gated by a semaphore sized to the cores, so that a burst of
//! sign-ins cannot starve discovery or JWKS of worker threads.

use std::sync::OnceLock;

use tokio::sync::Semaphore;

fn permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Semaphore::new(cores)
    })
}

#[derive(Debug, thiserror::Error)]
#[error("CPU task failed: {0}")]
pub struct CpuError(String);

pub async fn run<T, F>(work: F) -> Result<T, CpuError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let _permit = permits()
        .acquire()
        .await
        .map_err(|e| CpuError(e.to_string()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CpuError(e.to_string()))
}
