//! `cargo run --release --bin conformance`: runs the OpenID Foundation OP test plans
//! (Config, Basic, Form Post, RP-Initiated and Back-Channel Logout) against an in-process
//! Tessera — or a running server given with `--issuer` — and prints a table, plan by plan and
//! module by module. Exits non-zero if any module FAILED. See `conformance/runner/mod.rs`.

mod runner;

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

use runner::target::{Account, ClientCreds, DEFAULT_REDIRECT_URI};
use runner::{ALL_PLANS, Plan, Target, report};

#[derive(Parser, Debug)]
#[command(
    name = "conformance",
    about = "Runs the OpenID Foundation OP conformance plans against Tessera and prints the results."
)]
struct Args {
    /// Target a running server instead of starting one in this process.
    #[arg(long, env = "TESSERA_CONFORMANCE_ISSUER")]
    issuer: Option<String>,
    /// `client` (client_secret_basic), registered with --redirect-uri.
    #[arg(long, env = "TESSERA_CONFORMANCE_CLIENT_ID")]
    client_id: Option<String>,
    #[arg(
        long,
        env = "TESSERA_CONFORMANCE_CLIENT_SECRET",
        hide_env_values = true
    )]
    client_secret: Option<String>,
    /// `client2`: the second client of oidcc-refresh-token.
    #[arg(long, env = "TESSERA_CONFORMANCE_CLIENT2_ID")]
    client2_id: Option<String>,
    #[arg(
        long,
        env = "TESSERA_CONFORMANCE_CLIENT2_SECRET",
        hide_env_values = true
    )]
    client2_secret: Option<String>,
    /// `client_secret_post` (default: the first client, which Tessera lets use either method).
    #[arg(long, env = "TESSERA_CONFORMANCE_POST_CLIENT_ID")]
    post_client_id: Option<String>,
    #[arg(
        long,
        env = "TESSERA_CONFORMANCE_POST_CLIENT_SECRET",
        hide_env_values = true
    )]
    post_client_secret: Option<String>,
    /// The redirect URI registered for the clients (nothing needs to listen there).
    #[arg(long, env = "TESSERA_CONFORMANCE_REDIRECT_URI", default_value = DEFAULT_REDIRECT_URI)]
    redirect_uri: String,
    /// The test account that signs in through the hosted page.
    #[arg(long, env = "TESSERA_CONFORMANCE_EMAIL")]
    email: Option<String>,
    #[arg(long, env = "TESSERA_CONFORMANCE_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// An extra root certificate (PEM) to trust for the target.
    #[arg(long, env = "TESSERA_CONFORMANCE_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Plans to run (config, basic, formpost, rp-logout, backchannel); default: all.
    #[arg(long = "plan")]
    plans: Vec<String>,
    /// Run only these modules (suite test names).
    #[arg(long = "module")]
    modules: Vec<String>,
    /// Also run the openid-client (JavaScript) relying party against the same target.
    #[arg(long)]
    with_js: bool,
    /// Modules run at the same time (each with its own browser).
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Where the Markdown table is written.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/conformance.md"))]
    markdown: PathBuf,
    /// Show the in-process server's logs.
    #[arg(long)]
    verbose: bool,
}

fn required(value: Option<String>, flag: &str) -> Result<String, String> {
    value.ok_or_else(|| format!("--issuer needs {flag} (or its TESSERA_CONFORMANCE_* variable)"))
}

async fn target(args: &Args) -> Result<Target, String> {
    let Some(issuer) = &args.issuer else {
        if args.verbose {
            let config = tessera::config::Config {
                log_level: "info".into(),
                ..tessera::config::Config::default()
            };
            tessera::init_logging(&config);
        }
        return Target::start_in_process().await;
    };
    let client = ClientCreds {
        id: required(args.client_id.clone(), "--client-id")?,
        secret: required(args.client_secret.clone(), "--client-secret")?,
    };
    let client2 = ClientCreds {
        id: required(args.client2_id.clone(), "--client2-id")?,
        secret: required(args.client2_secret.clone(), "--client2-secret")?,
    };
    let client_post = ClientCreds {
        id: args
            .post_client_id
            .clone()
            .unwrap_or_else(|| client.id.clone()),
        secret: args
            .post_client_secret
            .clone()
            .unwrap_or_else(|| client.secret.clone()),
    };
    let account = Account {
        email: required(args.email.clone(), "--email")?,
        password: required(args.password.clone(), "--password")?,
    };
    Target::external(
        issuer,
        client,
        client2,
        client_post,
        &args.redirect_uri,
        account,
        args.ca_cert.clone(),
    )
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let plans: Vec<Plan> = if args.plans.is_empty() {
        ALL_PLANS.to_vec()
    } else {
        let mut plans = Vec::new();
        for p in &args.plans {
            match Plan::parse(p) {
                Some(plan) => plans.push(plan),
                None => {
                    eprintln!("conformance: unknown plan {p}");
                    std::process::exit(2);
                }
            }
        }
        plans
    };
    let target = match target(&args).await {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("conformance: {e}");
            std::process::exit(2);
        }
    };
    // No port or other per-run value: the Markdown feeds the README.
    let about = if target.is_in_process() {
        format!(
            "Target: in-process Tessera on {}, behind a TLS front (https://127.0.0.1, self-signed). Static clients `client`, `client2`, `client_secret_post`; discovery; response_type=code.",
            target.database
        )
    } else {
        format!(
            "Target: {} (running server). Static clients `client`, `client2`, `client_secret_post`; discovery; response_type=code.",
            target.issuer
        )
    };
    eprintln!("conformance: {about}");

    let mut results = Vec::new();
    for plan in plans {
        if args.modules.is_empty() {
            eprintln!(
                "conformance: running {} ({})",
                plan.label(),
                plan.suite_name()
            );
            results.extend(runner::run_plan(&target, plan, args.parallel).await);
        } else {
            for (module, _) in plan.modules() {
                if args.modules.iter().any(|m| m == module) {
                    results.push(runner::run_module(&target, plan, module).await);
                }
            }
        }
    }
    if args.with_js {
        eprintln!("conformance: running {}", runner::js::PLAN);
        results.extend(runner::js::run(&target).await);
    }

    print!("{}", report::text_table(&results));
    let line = report::count_line(&results);
    if let Some(dir) = args.markdown.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&args.markdown, report::markdown(&results, &about)) {
        Ok(()) => eprintln!("conformance: wrote {}", args.markdown.display()),
        Err(e) => eprintln!("conformance: cannot write {}: {e}", args.markdown.display()),
    }
    println!("{line}");
    let failed = report::counts(&results).failed;
    if let Ok(t) = Arc::try_unwrap(target) {
        t.shutdown().await;
    }
    std::process::exit(if failed > 0 { 1 } else { 0 });
}
