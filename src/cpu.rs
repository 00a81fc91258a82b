//! CPU-heavy work never runs on the async runtime's worker threads.
//!
//! - [`run`]: work a request waits for right now (RSA signing), on as many dedicated threads as
//!   there are cores.
//! - [`run_low_priority`]: password hashing (argon2id, tens of milliseconds and 19 MiB each),
//!   on a few dedicated threads at the lowest scheduling priority (SCHED_IDLE). When discovery,
//!   JWKS or the token endpoint want the cores, the kernel runs them first, so a burst of
//!   sign-ins slows sign-ins down and nothing else; when the machine is idle the hashing still
//!   gets every cycle.
//!
//! Both are a [`Lane`]: a fixed set of named threads fed by a queue. Signing used to go to
//! tokio's blocking pool behind a semaphore; under the refresh grant that pool grew to dozens of
//! threads, each picked in turn and each cold, and the hand-offs between them were a large part
//! of the kernel's share of the profile. A few threads that stay busy keep their caches.
//! The store's SQLite writer is a one-thread lane too ([`crate::store::Store::with_sqlite_writer`]).

use std::sync::{Arc, Mutex, OnceLock, mpsc};

use tokio::sync::oneshot;

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

#[derive(Debug, thiserror::Error)]
#[error("CPU task failed: {0}")]
pub struct CpuError(String);

type Job = Box<dyn FnOnce() + Send>;

/// Threads that run queued jobs in order of arrival. They end when the lane is dropped.
pub struct Lane {
    queue: mpsc::Sender<Job>,
}

impl Lane {
    /// `threads` threads named `{name}-{i}`, each running `setup` first.
    pub fn new(name: &str, threads: usize, setup: fn()) -> Lane {
        let (queue, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    setup();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match receiver.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A panic ends its job, never the thread: a lane of one
                            // thread (the SQLite writer) would otherwise stop for good.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawning a worker thread");
        }
        Lane { queue }
    }

    /// Queues `work` for one of the lane's threads without waiting for it: `false` if the
    /// threads have stopped. A panic in `work` ends that job only.
    pub fn submit(&self, work: impl FnOnce() + Send + 'static) -> bool {
        self.queue.send(Box::new(work)).is_ok()
    }

    /// Runs `work` on one of the lane's threads and waits for its result. A panic in `work` is
    /// an error here; the thread lives on.
    pub async fn run<T, F>(&self, work: F) -> Result<T, CpuError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let queued = self.submit(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = reply.send(outcome);
        });
        if !queued {
            return Err(CpuError("worker threads stopped".into()));
        }
        match result.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(CpuError("task panicked".into())),
            Err(_) => Err(CpuError("task dropped".into())),
        }
    }
}

/// Runs `work` (RSA signing, key generation) on a signing thread and waits for its result.
pub async fn run<T, F>(work: F) -> Result<T, CpuError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    static LANE: OnceLock<Lane> = OnceLock::new();
    LANE.get_or_init(|| Lane::new("tessera-cpu", cores(), || {}))
        .run(work)
        .await
}

/// Niceness of the low-priority threads where SCHED_IDLE is refused ([`lower_own_priority`]):
/// the lowest, weight 15 against 1024 for normal threads.
const LOW_PRIORITY_NICE: i32 = 19;

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

/// Runs `work` on a low-priority thread and waits for its result. As many threads as cores: on
/// an idle machine sign-ins use all of it; the memory bound is one argon2 block per thread.
pub async fn run_low_priority<T, F>(work: F) -> Result<T, CpuError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    static LANE: OnceLock<Lane> = OnceLock::new();
    LANE.get_or_init(|| Lane::new("tessera-lowprio", cores(), lower_own_priority))
        .run(work)
        .await
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

    #[tokio::test]
    async fn a_lane_runs_jobs_in_order_on_its_own_threads_and_survives_panics() {
        let lane = Lane::new("test-lane", 1, || {});
        let runtime_thread = std::thread::current().id();
        let (order, thread) = {
            let order = Arc::new(Mutex::new(Vec::new()));
            let jobs = (0..16).map(|i| {
                let order = order.clone();
                lane.run(move || {
                    order.lock().unwrap().push(i);
                    std::thread::current().id()
                })
            });
            let threads = futures_util::future::join_all(jobs).await;
            let thread = threads[0].as_ref().unwrap().to_owned();
            assert!(threads.iter().all(|t| t.as_ref().unwrap() == &thread));
            (order.lock().unwrap().clone(), thread)
        };
        assert_eq!(
            order,
            (0..16).collect::<Vec<_>>(),
            "one thread: arrival order"
        );
        assert_ne!(thread, runtime_thread);
        assert!(lane.run(|| -> u8 { panic!("boom") }).await.is_err());
        assert_eq!(lane.run(|| 7).await.unwrap(), 7);
        // A job queued without waiting may panic too: the lane's one thread lives on.
        assert!(lane.submit(|| panic!("boom, unawaited")));
        assert_eq!(lane.run(|| 8).await.unwrap(), 8);
        assert_eq!(run(|| 6 * 7).await.unwrap(), 42);
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
