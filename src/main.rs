use clap::Parser;

use tessera::admin::cli::{Cli, Command};
use tessera::config::Config;

fn main() -> std::process::ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tessera: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            // The companion is a client of a server: it never opens the database.
            Command::Device(command) => {
                print_outcome(tessera::companion_app::run(&config.issuer, command).await)
            }
            command => print_outcome(tessera::admin::cli::run_admin(&config, command).await),
        }
    })
}

/// Commands print JSON for scripts: the result on stdout, or `{"error"}` on stderr.
fn print_outcome(outcome: Result<serde_json::Value, String>) -> std::process::ExitCode {
    match outcome {
        Ok(out) => {
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", serde_json::json!({ "error": e }));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> std::process::ExitCode {
    tessera::init_logging(&config);
    let listener = match tokio::net::TcpListener::bind(config.bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tessera: cannot listen on {}: {e}", config.bind);
            return std::process::ExitCode::FAILURE;
        }
    };
    let issuer = config.issuer.clone();
    let demo = config.demo;
    let running = match tessera::app::start(config, listener).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tessera: start-up failed: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(at) = running.metrics_addr {
        tracing::info!(addr = %at, "metrics at /metrics");
    }
    tracing::info!(issuer = %issuer, addr = %running.addr, backend = running.app.store.backend_name(), "Tessera is serving");
    if demo {
        println!("\n  Tessera is running at {issuer}");
        println!("  Demo app:  {issuer}/demo");
        println!(
            "  Sign in as {} with password {}\n",
            tessera::demo::DEMO_EMAIL,
            tessera::demo::DEMO_PASSWORD
        );
    }
    wait_for_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    // In-flight requests get a bounded time to finish.
    if tokio::time::timeout(std::time::Duration::from_secs(20), running.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain time exceeded; exiting with requests still in flight");
    }
    std::process::ExitCode::SUCCESS
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// glibc's allocator, left alone, gives each new thread its own arena (up to 8 per core) and
/// raises its mmap threshold after the first large free, so every argon2id block (19 MiB)
/// would stay in the heap after the sign-in. A fixed threshold sends large blocks straight back
/// to the kernel, and two arenas suffice for a server whose heavy work runs on a few threads:
/// together they keep the idle and post-burst RSS low (measured by `cargo bench --bench load`).
/// mimalloc was tried (session 10): it kept about 50 MiB after a few sign-ins, past the 30 MB
/// idle target.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
    }
}
