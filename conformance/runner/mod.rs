//! Tessera's reproduction of the OpenID Foundation OP test plans.
//!
//! The suite itself (Java + MongoDB + a browser) cannot run here, so this runner performs
//! each module's requests itself and evaluates the same conditions at the same severities
//! (FAILURE vs WARNING), reading the suite's public source (`openid-certification/
//! conformance-suite`, `src/main/java/net/openid/conformance/openid/*`). Module names are the
//! suite's `testName`s. Where a person would act in the suite's browser (signing in, allowing
//! consent), [`browser::Browser`] does what a browser would over HTTP.
//!
//! Used by both `conformance/main.rs` (the `conformance` binary) and `tests/conformance.rs`.

#![allow(dead_code)]

pub mod basic;
pub mod browser;
pub mod checks;
pub mod config_op;
pub mod flow;
pub mod jose;
pub mod js;
pub mod logout;
pub mod report;
pub mod target;
pub mod tls;

use std::sync::Arc;

pub use target::Target;

/// The result of one module, as the suite would show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Every condition that failed at WARNING severity: `Condition: message`.
    Warning(Vec<String>),
    /// Every condition that failed at FAILURE severity (and any warnings after them).
    Failed(Vec<String>),
    /// Why the module could not be run (suite's `fireTestSkipped`, or not implemented).
    Skipped(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "PASSED",
            Outcome::Warning(_) => "WARNING",
            Outcome::Failed(_) => "FAILED",
            Outcome::Skipped(_) => "SKIPPED",
        }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

#[derive(Debug, Clone)]
pub struct ModuleResult {
    pub plan: String,
    pub module: String,
    /// The suite variant the module ran under, e.g. `client_secret_basic`.
    pub variant: String,
    pub outcome: Outcome,
    /// What the runner observed that the suite would leave to a person (screenshots), and
    /// which of two accepted behaviours Tessera chose.
    pub notes: Vec<String>,
    pub seconds: f64,
}

/// The plans this runner reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// `oidcc-basic-certification-test-plan`
    Basic,
    /// `oidcc-formpost-basic-certification-test-plan`
    FormPostBasic,
    /// `oidcc-config-certification-test-plan`
    Config,
    /// `oidcc-rp-initiated-logout-certification-test-plan`
    RpInitiatedLogout,
    /// `oidcc-backchannel-rp-initiated-logout-certification-test-plan`
    BackChannelLogout,
}

pub const ALL_PLANS: &[Plan] = &[
    Plan::Config,
    Plan::Basic,
    Plan::FormPostBasic,
    Plan::RpInitiatedLogout,
    Plan::BackChannelLogout,
];

impl Plan {
    pub fn suite_name(self) -> &'static str {
        match self {
            Plan::Basic => "oidcc-basic-certification-test-plan",
            Plan::FormPostBasic => "oidcc-formpost-basic-certification-test-plan",
            Plan::Config => "oidcc-config-certification-test-plan",
            Plan::RpInitiatedLogout => "oidcc-rp-initiated-logout-certification-test-plan",
            Plan::BackChannelLogout => {
                "oidcc-backchannel-rp-initiated-logout-certification-test-plan"
            }
        }
    }

    /// The certification profile name the suite gives the plan.
    pub fn label(self) -> &'static str {
        match self {
            Plan::Basic => "Basic OP",
            Plan::FormPostBasic => "Form Post OP (basic)",
            Plan::Config => "Config OP",
            Plan::RpInitiatedLogout => "RP-Initiated Logout OP",
            Plan::BackChannelLogout => "Back-Channel Logout OP",
        }
    }

    pub fn parse(text: &str) -> Option<Plan> {
        let t = text.to_ascii_lowercase();
        ALL_PLANS.iter().copied().find(|p| {
            p.suite_name() == t
                || p.label().to_ascii_lowercase() == t
                || match p {
                    Plan::Basic => t == "basic",
                    Plan::FormPostBasic => t == "formpost" || t == "form-post",
                    Plan::Config => t == "config",
                    Plan::RpInitiatedLogout => t == "rp-logout" || t == "logout",
                    Plan::BackChannelLogout => t == "backchannel" || t == "back-channel",
                }
        })
    }

    /// The plan's modules in the suite's order, with the variant each runs under. Modules
    /// marked `@VariantNotApplicable(static_client)` are left out, as the suite leaves them
    /// out of a plan configured with static clients (see [`NOT_APPLICABLE_TO_STATIC_CLIENTS`]).
    pub fn modules(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Plan::Basic | Plan::FormPostBasic => basic::MODULES
                .iter()
                .map(|m| {
                    let variant = if *m == "oidcc-server-client-secret-post" {
                        "client_secret_post"
                    } else {
                        "client_secret_basic"
                    };
                    (*m, variant)
                })
                .collect(),
            Plan::Config => vec![("oidcc-discovery-endpoint-verification", "static_client")],
            Plan::RpInitiatedLogout => RP_LOGOUT_MODULES
                .iter()
                .map(|m| (*m, "client_secret_basic"))
                .collect(),
            Plan::BackChannelLogout => BACKCHANNEL_LOGOUT_MODULES
                .iter()
                .map(|m| (*m, "client_secret_basic"))
                .collect(),
        }
    }

    pub fn variant_label(self) -> &'static str {
        match self {
            Plan::FormPostBasic => "response_mode=form_post",
            Plan::Basic => "response_mode=default",
            _ => "",
        }
    }
}

/// Modules of the Basic plan that the suite drops when clients are registered statically.
pub const NOT_APPLICABLE_TO_STATIC_CLIENTS: &[&str] = &[
    "oidcc-idtoken-signature",
    "oidcc-idtoken-unsigned",
    "oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported",
];

/// `OIDCCRpInitiatedLogoutTestPlan`
pub const RP_LOGOUT_MODULES: &[&str] = &[
    "oidcc-rp-initiated-logout-discovery-endpoint-verification",
    "oidcc-rp-initiated-logout",
    "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri",
    "oidcc-rp-initiated-logout-modified-id-token-hint",
    "oidcc-rp-initiated-logout-no-id-token-hint",
    "oidcc-rp-initiated-logout-no-params",
    "oidcc-rp-initiated-logout-no-post-logout-redirect-uri",
    "oidcc-rp-initiated-logout-no-state",
    "oidcc-rp-initiated-logout-only-state",
    "oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri",
    "oidcc-rp-initiated-logout-bad-id-token-hint",
];

/// `OIDCCBackchannelRpInitiatedLogoutTestPlan`
pub const BACKCHANNEL_LOGOUT_MODULES: &[&str] = &[
    "oidcc-backchannel-logout-discovery-endpoint-verification",
    "oidcc-backchannel-rp-initiated-logout",
];

/// Runs one module of one plan against the target.
pub async fn run_module(target: &Arc<Target>, plan: Plan, module: &str) -> ModuleResult {
    let started = std::time::Instant::now();
    let variant = plan
        .modules()
        .into_iter()
        .find(|(m, _)| *m == module)
        .map(|(_, v)| v)
        .unwrap_or("");
    let (outcome, notes) = match plan {
        Plan::Basic | Plan::FormPostBasic => {
            basic::run(target, module, plan == Plan::FormPostBasic).await
        }
        Plan::Config => config_op::run(target).await,
        Plan::RpInitiatedLogout | Plan::BackChannelLogout => logout::run(target, module).await,
    };
    ModuleResult {
        plan: plan.label().to_owned(),
        module: module.to_owned(),
        variant: [variant, plan.variant_label()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
        outcome,
        notes,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Runs every module of a plan, `parallel` at a time (each module has its own browser and
/// its own cookies, as separate suite runs would), and returns them in the plan's order.
pub async fn run_plan(target: &Arc<Target>, plan: Plan, parallel: usize) -> Vec<ModuleResult> {
    let modules = plan.modules();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut tasks = Vec::new();
    for (module, _) in modules {
        let target = target.clone();
        let semaphore = semaphore.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore.acquire_owned().await.expect("semaphore");
            run_module(&target, plan, module).await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("module task"));
    }
    results
}
