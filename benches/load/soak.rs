//! Long mode (`LOAD_MODE=soak`, `LOAD_SOAK_SECONDS`, default 600): half of the measured
//! capacity for ten minutes or more, sampling table sizes and RSS, to show that housekeeping
//! keeps every table bounded by rate × lifetime.
//!
//! The server runs with short lifetimes (codes 60 s, access tokens 60 s, sessions and the
//! grants without refresh tokens 120 s, pending requests 120 s, reuse detection 120 s) so
//! that a ten-minute run sees several whole lifetimes of every artefact; with the defaults the
//! same plateau forms, only later.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{
    Context, Flavor, R, Settings, Target, create_client, env_num, mib, phase_refresh, plain_client,
    round, rss_kib, sign_in, start_server,
};

const SOAK_CONFIG: &str = "\
[tokens]
access_token_format = \"opaque\"
access_token_ttl_secs = 60
code_ttl_secs = 60
authorization_request_ttl_secs = 120
reuse_detection_secs = 120

[sessions]
idle_ttl_secs = 120
absolute_ttl_secs = 120
";

#[derive(Debug, Serialize)]
pub struct Sample {
    elapsed_s: u64,
    requests_per_second: f64,
    errors: u64,
    rss_kib: u64,
    tables: Vec<(&'static str, i64)>,
}

#[derive(Debug, Serialize)]
pub struct SoakReport {
    git_commit: Option<String>,
    machine: String,
    backend: String,
    seconds: u64,
    capacity_refresh_per_second: f64,
    target_requests_per_second: f64,
    achieved_requests_per_second: f64,
    signins: u64,
    /// Refresh-token families answered "revoked" because the session they were issued in
    /// ended; each was replaced after a new sign-in.
    families_ended: u64,
    pub errors: u64,
    error_samples: Vec<String>,
    samples: Vec<Sample>,
    /// Per table: the largest count in the last third of the run over the largest in the
    /// middle third (about 1.0 when bounded, growing with the run when not).
    growth_last_vs_middle: Vec<(&'static str, f64)>,
    rss_first_kib: u64,
    rss_last_kib: u64,
    rss_high_water_kib: u64,
}

struct Counters {
    ok: AtomicU64,
    errors: AtomicU64,
    signins: AtomicU64,
    families_ended: AtomicU64,
    samples: std::sync::Mutex<Vec<String>>,
}

impl Counters {
    fn error(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut s = self.samples.lock().unwrap();
        if s.len() < 5 {
            s.push(e);
        }
    }
}

pub async fn run(s: Settings) -> R<SoakReport> {
    let seconds: u64 = env_num("LOAD_SOAK_SECONDS", 600)?;
    let bin = super::server_binary();
    let config_dir = tempfile::tempdir().ctx("config folder")?;
    let config_path = config_dir.path().join("soak.toml");
    std::fs::write(&config_path, SOAK_CONFIG).ctx("writing the soak configuration")?;
    let server = start_server(
        &bin,
        &[("TESSERA_CONFIG", config_path.display().to_string())],
    )
    .await?;
    let backend = match std::env::var("TESSERA_DATABASE_URL") {
        Ok(u) if u.starts_with("postgres") => u,
        _ => format!(
            "sqlite://{}",
            server.data_dir.path().join("tessera.db").display()
        ),
    };
    let store = tessera::store::Store::connect(&backend, 1).await?;
    let (client_id, secret) = create_client(&server)?;
    let cookie = sign_in(&server.base, &client_id).await?;
    let target = Arc::new(Target::new(
        &server.base,
        server.pid,
        &client_id,
        &secret,
        Flavor::Tessera { cookie },
    )?);

    eprintln!("soak: measuring capacity (refresh grant, 5 s)");
    let probe = Settings {
        seconds: 5.0,
        warmup_seconds: 1.0,
        ..s.clone()
    };
    let (capacity, _) = phase_refresh(&target, &probe, server.pid).await?;
    let rate = (capacity.requests_per_second / 2.0).max(10.0);
    eprintln!(
        "soak: capacity {:.0} req/s; running {seconds} s at {rate:.0} req/s",
        capacity.requests_per_second
    );

    let counters = Arc::new(Counters {
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        signins: AtomicU64::new(0),
        families_ended: AtomicU64::new(0),
        samples: Default::default(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let workers = s.concurrency.max(2);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (mut target, counters, stop) = (target.clone(), counters.clone(), stop.clone());
        let (client_id, secret) = (client_id.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let http = plain_client()?;
            let mut family = target.new_family(&http).await?;
            let mut tick = tokio::time::interval(Duration::from_secs_f64(workers as f64 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut step = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                step += 1;
                // 7 refreshes, 2 plain code flows (code + grant that expire), 1 discovery.
                let outcome = match step % 10 {
                    0..=6 => {
                        let form = format!(
                            "grant_type=refresh_token&refresh_token={}",
                            super::enc(&family)
                        );
                        match target.token(&http, form).await {
                            Ok(body) => serde_json::from_slice::<serde_json::Value>(&body)
                                .ok()
                                .and_then(|v| v["refresh_token"].as_str().map(str::to_owned))
                                .map(|next| family = next)
                                .ok_or_else(|| "refresh without a refresh_token".to_owned()),
                            Err(e) => Err(e),
                        }
                    }
                    7 | 8 => match target.code(&http, false).await {
                        Ok(code) => target
                            .token(&http, target.code_form(&code))
                            .await
                            .map(|_| ()),
                        Err(e) => Err(e),
                    },
                    _ => http
                        .get(format!("{}/.well-known/openid-configuration", target.base))
                        .send()
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| {
                            (r.status() == 200)
                                .then_some(())
                                .ok_or_else(|| format!("discovery: {}", r.status()))
                        }),
                };
                match outcome {
                    Ok(()) => {
                        counters.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    // The bench's own session ends like any other (120 s here), and the
                    // refresh-token families issued in it end with it: sign in again, as a
                    // browser would, start a new family and carry on. A worker usually meets
                    // the sign-in page (a code flow) before the sweeper revokes its old family,
                    // so `families_ended` stays near 0; nothing else revokes in this run, so a
                    // large count would point at a server-side revocation to look into.
                    Err(e) if e.contains("/login") || e.contains("has been revoked") => {
                        if e.contains("has been revoked") {
                            counters.families_ended.fetch_add(1, Ordering::Relaxed);
                        }
                        match sign_in(&target.base, &client_id).await {
                            Ok(cookie) => {
                                counters.signins.fetch_add(1, Ordering::Relaxed);
                                target = Arc::new(Target::new(
                                    &target.base,
                                    target.pid,
                                    &client_id,
                                    &secret,
                                    Flavor::Tessera { cookie },
                                )?);
                                match target.new_family(&http).await {
                                    Ok(f) => family = f,
                                    Err(e) => counters.error(format!("new family: {e}")),
                                }
                            }
                            Err(e) => counters.error(format!("sign-in again: {e}")),
                        }
                    }
                    Err(e) => {
                        counters.error(e);
                        // The family may be dead now: start another.
                        if let Ok(f) = target.new_family(&http).await {
                            family = f;
                        }
                    }
                }
            }
            Ok::<(), String>(())
        }));
    }
    // One password sign-in per second: sessions, pending requests and rate-limit rows.
    {
        let (base, client_id, counters, stop) = (
            target.base.clone(),
            client_id.clone(),
            counters.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                match sign_in(&base, &client_id).await {
                    Ok(_) => counters.signins.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        counters.error(format!("sign-in: {e}"));
                        0
                    }
                };
            }
            Ok(())
        }));
    }

    let started = Instant::now();
    let mut samples = Vec::new();
    let mut last_ok = 0;
    let mut last_at = Instant::now();
    let every = Duration::from_secs(30.min(seconds.max(1)));
    let rss_first = rss_kib(server.pid, "VmRSS").unwrap_or(0);
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(
            every.min(Duration::from_secs(seconds).saturating_sub(started.elapsed())),
        )
        .await;
        let ok = counters.ok.load(Ordering::Relaxed);
        let tables = store.table_sizes().await.map_err(|e| e.to_string())?;
        let sample = Sample {
            elapsed_s: started.elapsed().as_secs(),
            requests_per_second: round((ok - last_ok) as f64 / last_at.elapsed().as_secs_f64(), 1),
            errors: counters.errors.load(Ordering::Relaxed),
            rss_kib: rss_kib(server.pid, "VmRSS").unwrap_or(0),
            tables,
        };
        eprintln!(
            "soak: {:>4} s  {:>6.1} req/s  {} errors  RSS {:.1} MiB  {}",
            sample.elapsed_s,
            sample.requests_per_second,
            sample.errors,
            mib(sample.rss_kib),
            sample
                .tables
                .iter()
                .map(|(t, n)| format!("{t}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        samples.push(sample);
        last_ok = ok;
        last_at = Instant::now();
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => counters.error(format!("worker: {e}")),
            Err(e) => counters.error(format!("worker panicked: {e}")),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let third = samples.len() / 3;
    let growth = if third == 0 {
        Vec::new()
    } else {
        let names: Vec<&'static str> = samples[0].tables.iter().map(|(t, _)| *t).collect();
        let max_in = |range: &[Sample], i: usize| {
            range.iter().map(|s| s.tables[i].1).max().unwrap_or(0) as f64
        };
        names
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let middle = max_in(&samples[third..2 * third], i);
                let last = max_in(&samples[2 * third..], i);
                (*t, round(last / middle.max(1.0), 2))
            })
            .collect()
    };
    let rss_high_water = rss_kib(server.pid, "VmHWM").unwrap_or(0);
    Ok(SoakReport {
        git_commit: super::git_commit(),
        machine: super::machine(),
        backend: if backend.starts_with("postgres") {
            "postgres".into()
        } else {
            "sqlite".into()
        },
        seconds,
        capacity_refresh_per_second: capacity.requests_per_second,
        target_requests_per_second: round(rate, 1),
        achieved_requests_per_second: round(
            counters.ok.load(Ordering::Relaxed) as f64 / elapsed,
            1,
        ),
        signins: counters.signins.load(Ordering::Relaxed),
        families_ended: counters.families_ended.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        error_samples: counters.samples.lock().unwrap().clone(),
        rss_first_kib: rss_first,
        rss_last_kib: samples.last().map(|s| s.rss_kib).unwrap_or(0),
        rss_high_water_kib: rss_high_water,
        samples,
        growth_last_vs_middle: growth,
    })
}

pub fn markdown(r: &SoakReport) -> String {
    use std::fmt::Write as _;
    let mut md = String::new();
    let _ = writeln!(md, "# Tessera soak run\n");
    let _ = writeln!(
        md,
        "{}; **{}**; {} s at {:.0} req/s (half of the {:.0} req/s refresh capacity measured first), \
         achieved {:.1} req/s, plus {} password sign-ins; {} refresh-token families ended \
         with their session and were replaced; {} errors.\n",
        r.machine,
        r.backend,
        r.seconds,
        r.target_requests_per_second,
        r.capacity_refresh_per_second,
        r.achieved_requests_per_second,
        r.signins,
        r.families_ended,
        r.errors
    );
    if let Some(first) = r.samples.first() {
        let _ = write!(md, "| s | req/s | RSS MiB |");
        for (t, _) in &first.tables {
            let _ = write!(md, " {t} |");
        }
        let _ = writeln!(md);
        let _ = writeln!(md, "|{}", "---:|".repeat(3 + first.tables.len()));
        for s in &r.samples {
            let _ = write!(
                md,
                "| {} | {:.1} | {:.1} |",
                s.elapsed_s,
                s.requests_per_second,
                mib(s.rss_kib)
            );
            for (_, n) in &s.tables {
                let _ = write!(md, " {n} |");
            }
            let _ = writeln!(md);
        }
    }
    let _ = writeln!(
        md,
        "\nLargest count in the last third over the largest in the middle third: {}.",
        r.growth_last_vs_middle
            .iter()
            .map(|(t, g)| format!("{t} {g:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        md,
        "\nRSS {:.1} MiB at the start of the soak, {:.1} MiB at the end, high-water mark {:.1} MiB.",
        mib(r.rss_first_kib),
        mib(r.rss_last_kib),
        mib(r.rss_high_water_kib)
    );
    for e in &r.error_samples {
        let _ = writeln!(md, "\n- error: `{e}`");
    }
    md
}
