//! The second relying party: `conformance/js/run.mjs` (panva's openid-client) run against
//! the same target, its results reported in the same table as plan `openid-client (js)`.

use std::path::PathBuf;
use std::process::Stdio;

use super::{ModuleResult, Outcome, Target};

pub const PLAN: &str = "openid-client (js)";

pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance/js")
}

/// Runs the JS runner with `client` (client_secret_basic) and the test account.
pub async fn run(target: &Target) -> Vec<ModuleResult> {
    let dir = js_dir();
    let failed = |why: String| {
        vec![ModuleResult {
            plan: PLAN.into(),
            module: "(runner)".into(),
            variant: String::new(),
            outcome: Outcome::Failed(vec![why]),
            notes: Vec::new(),
            seconds: 0.0,
        }]
    };
    if !dir.join("node_modules/openid-client").is_dir() {
        return failed(format!(
            "openid-client is not installed: run `npm ci` in {}",
            dir.display()
        ));
    }
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join("run.mjs"))
        .arg("--json")
        .env("TESSERA_CONFORMANCE_ISSUER", &target.issuer)
        .env("TESSERA_CONFORMANCE_CLIENT_ID", &target.client.id)
        .env("TESSERA_CONFORMANCE_CLIENT_SECRET", &target.client.secret)
        .env("TESSERA_CONFORMANCE_EMAIL", &target.account.email)
        .env("TESSERA_CONFORMANCE_PASSWORD", &target.account.password)
        .env("TESSERA_CONFORMANCE_REDIRECT_URI", &target.redirect_uri)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(ca) = &target.ca_file {
        command.env("NODE_EXTRA_CA_CERTS", ca);
    }
    let output = match command.output().await {
        Ok(o) => o,
        Err(e) => return failed(format!("cannot start node: {e}")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut results = Vec::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let strings = |key: &str| -> Vec<String> {
            v[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        };
        let outcome = match v["result"].as_str() {
            Some("PASSED") => Outcome::Passed,
            Some("WARNING") => Outcome::Warning(strings("reasons")),
            Some("SKIPPED") => Outcome::Skipped(strings("reasons").join("; ")),
            _ => Outcome::Failed(strings("reasons")),
        };
        results.push(ModuleResult {
            plan: PLAN.into(),
            module: v["module"].as_str().unwrap_or("?").to_owned(),
            variant: "client_secret_basic".into(),
            outcome,
            notes: strings("notes"),
            seconds: v["seconds"].as_f64().unwrap_or(0.0),
        });
    }
    if results.is_empty()
        || !output.status.success() && results.iter().all(|r| !r.outcome.is_failed())
    {
        let stderr = String::from_utf8_lossy(&output.stderr);
        results.extend(failed(format!(
            "the JS runner exited with {}: {}",
            output.status,
            stderr.lines().take(5).collect::<Vec<_>>().join(" / ")
        )));
    }
    results
}
