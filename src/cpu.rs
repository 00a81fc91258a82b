//! CPU-heavy work never runs on the async runtime's worker threads.
//!
//! - [`run`]: work a request waits for right now (RSA signing), on a blocking task gated by a
//!   semaphore sized to the cores.
//! - [`run_low_priority`]: password hashing (argon2id, tens of milliseconds and 19 MiB each),
//!   on a few dedicated threads at the lowest scheduling priority (SCHED_IDLE). When discovery,
//!   JWKS or the token endpoint want the cores, the kernel runs them first, so a burst of
//!   sign-ins slows sign-ins down and nothing else; when the machine is idle the hashing still
//!   gets every cycle.

use std::sync::{Mutex, OnceLock, mpsc};

use tokio::sync::{Semaphore, oneshot};

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

fn permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| Semaphore::new(cores()))
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

type Job = Box<dyn FnOnce() + Send>;

/// Niceness of the low-priority threads where SCHED_IDLE is refused ([`lower_own_priority`]):
/// the lowest, weight 15 against 1024 for normal threads.
const LOW_PRIORITY_NICE: i32 = 19;

fn low_priority_queue() -> &'static Mutex<mpsc::Sender<Job>> {
    static QUEUE: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = std::sync::Arc::new(Mutex::new(receiver));
        // As many threads as cores: on an idle machine sign-ins use all of it; the memory
        // bound is one argon2 block per thread.
        for i in 0..cores() {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("tessera-lowprio-{i}"))
                .spawn(move || {
                    lower_own_priority();
                    loop {
                        let job = match receiver.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawning a low-priority worker thread");
        }
        Mutex::new(sender)
    })
}

/// Linux keeps the scheduling policy per thread (not per process, unlike POSIX), so this
/// lowers only the calling worker thread: SCHED_IDLE, and nice 19 where that is refused.
///
/// SCHED_IDLE, not just nice 19: under the EEVDF scheduler (Linux 6.6 on) a running task may
/// keep the CPU until its slice ends even when a higher-weight task wakes, while a SCHED_IDLE
/// task is preempted at once by any normal task that wakes. It still gets a sliver of the CPU
/// (weight 3 against 1024), so under saturation sign-ins slow down but do not stop. Measured
/// (README "Benchmarks"): discovery's p99 with 8 sign-ins running fell from a median 0.85 ms
/// to 0.60 ms.
fn lower_own_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler and setpriority have no memory-safety preconditions; `0` names
    // the calling thread, and `param` lives across the call.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS as _, 0, LOW_PRIORITY_NICE);
        }
    }
}

/// Runs `work` on a low-priority thread and waits for its result.
pub async fn run_low_priority<T, F>(work: F) -> Result<T, CpuError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (reply, result) = oneshot::channel();
    let job: Job = Box::new(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let _ = reply.send(outcome);
    });
    low_priority_queue()
        .lock()
        .map_err(|_| CpuError("low-priority queue poisoned".into()))?
        .send(job)
        .map_err(|_| CpuError("low-priority workers stopped".into()))?;
    match result.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(CpuError("low-priority task panicked".into())),
        Err(_) => Err(CpuError("low-priority task dropped".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn low_priority_work_returns_results_and_survives_panics() {
        assert_eq!(run_low_priority(|| 6 * 7).await.unwrap(), 42);
        assert!(run_low_priority(|| -> u8 { panic!("boom") }).await.is_err());
        // The worker that caught the panic still serves.
        let results: Vec<_> =
            futures_util::future::join_all((0..8).map(|i| run_low_priority(move || i)))
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
        assert_eq!(results, (0..8).collect::<Vec<_>>());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn low_priority_threads_run_as_sched_idle_or_niced() {
        // SAFETY: both read the calling thread's own scheduling settings.
        let (policy, nice) = run_low_priority(|| unsafe {
            (
                libc::sched_getscheduler(0),
                libc::getpriority(libc::PRIO_PROCESS as _, 0),
            )
        })
        .await
        .unwrap();
        assert!(
            policy == libc::SCHED_IDLE || nice >= LOW_PRIORITY_NICE,
            "policy {policy}, nice {nice}"
        );
        // SAFETY: as above, on this test's own thread.
        let own = unsafe { libc::sched_getscheduler(0) };
        assert_ne!(
            own,
            libc::SCHED_IDLE,
            "only the hashing threads are lowered"
        );
    }
}
