//! The OpenID Foundation OP test plans, one test per module, each against its own in-process
//! Tessera (SQLite, or PostgreSQL with `TESSERA_TEST_DATABASE_URL`). A module passes the test
//! when the suite would not fail it: PASSED, WARNING (reasons printed) or SKIPPED as the suite
//! skips it. Run one alone, e.g. `cargo test --test conformance basic::oidcc_codereuse`.
//! The whole run with its table: `cargo run --release --bin conformance`.

#[path = "../conformance/runner/mod.rs"]
mod runner;

use std::sync::Arc;

use runner::{Outcome, Plan, Target, report};

async fn check(plan: Plan, module: &str) {
    let target = Arc::new(
        Target::start_in_process()
            .await
            .expect("in-process Tessera starts"),
    );
    let result = runner::run_module(&target, plan, module).await;
    let table = report::text_table(std::slice::from_ref(&result));
    println!("{table}");
    if let Ok(t) = Arc::try_unwrap(target) {
        t.shutdown().await;
    }
    assert!(
        !matches!(result.outcome, Outcome::Failed(_)),
        "{} {module} FAILED:\n{table}",
        plan.label()
    );
}

macro_rules! modules {
    ($plan:expr; $($name:ident => $module:literal),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                super::check($plan, $module).await;
            }
        )+
        #[test]
        fn every_module_of_the_plan_has_a_test() {
            let tested = [$($module),+];
            for (module, _) in $plan.modules() {
                assert!(tested.contains(&module), "no test for {module}");
            }
        }
    };
}

macro_rules! basic_modules {
    ($plan:expr) => {
        modules! { $plan;
            oidcc_server => "oidcc-server",
            oidcc_response_type_missing => "oidcc-response-type-missing",
            oidcc_userinfo_get => "oidcc-userinfo-get",
            oidcc_userinfo_post_header => "oidcc-userinfo-post-header",
            oidcc_userinfo_post_body => "oidcc-userinfo-post-body",
            oidcc_ensure_request_without_nonce_succeeds_for_code_flow => "oidcc-ensure-request-without-nonce-succeeds-for-code-flow",
            oidcc_scope_profile => "oidcc-scope-profile",
            oidcc_scope_email => "oidcc-scope-email",
            oidcc_scope_address => "oidcc-scope-address",
            oidcc_scope_phone => "oidcc-scope-phone",
            oidcc_scope_all => "oidcc-scope-all",
            oidcc_alternate_happy_flow => "oidcc-alternate-happy-flow",
            oidcc_display_page => "oidcc-display-page",
            oidcc_display_popup => "oidcc-display-popup",
            oidcc_prompt_login => "oidcc-prompt-login",
            oidcc_prompt_none_not_logged_in => "oidcc-prompt-none-not-logged-in",
            oidcc_prompt_none_logged_in => "oidcc-prompt-none-logged-in",
            oidcc_max_age_1 => "oidcc-max-age-1",
            oidcc_max_age_10000 => "oidcc-max-age-10000",
            oidcc_ensure_request_with_unknown_parameter_succeeds => "oidcc-ensure-request-with-unknown-parameter-succeeds",
            oidcc_id_token_hint => "oidcc-id-token-hint",
            oidcc_login_hint => "oidcc-login-hint",
            oidcc_ui_locales => "oidcc-ui-locales",
            oidcc_claims_locales => "oidcc-claims-locales",
            oidcc_ensure_request_with_acr_values_succeeds => "oidcc-ensure-request-with-acr-values-succeeds",
            oidcc_codereuse => "oidcc-codereuse",
            oidcc_codereuse_30seconds => "oidcc-codereuse-30seconds",
            oidcc_ensure_registered_redirect_uri => "oidcc-ensure-registered-redirect-uri",
            oidcc_ensure_post_request_succeeds => "oidcc-ensure-post-request-succeeds",
            oidcc_server_client_secret_post => "oidcc-server-client-secret-post",
            oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported => "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported",
            oidcc_claims_essential => "oidcc-claims-essential",
            oidcc_ensure_request_object_with_redirect_uri => "oidcc-ensure-request-object-with-redirect-uri",
            oidcc_refresh_token => "oidcc-refresh-token",
            oidcc_ensure_request_with_valid_pkce_succeeds => "oidcc-ensure-request-with-valid-pkce-succeeds",
        }
    };
}

/// `oidcc-basic-certification-test-plan`
mod basic {
    basic_modules!(super::Plan::Basic);
}

/// `oidcc-formpost-basic-certification-test-plan`
mod form_post {
    basic_modules!(super::Plan::FormPostBasic);
}

/// `oidcc-config-certification-test-plan`
mod config {
    modules! { super::Plan::Config;
        oidcc_discovery_endpoint_verification => "oidcc-discovery-endpoint-verification",
    }
}

/// `oidcc-rp-initiated-logout-certification-test-plan`
mod rp_logout {
    modules! { super::Plan::RpInitiatedLogout;
        oidcc_rp_initiated_logout_discovery_endpoint_verification => "oidcc-rp-initiated-logout-discovery-endpoint-verification",
        oidcc_rp_initiated_logout => "oidcc-rp-initiated-logout",
        oidcc_rp_initiated_logout_bad_post_logout_redirect_uri => "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri",
        oidcc_rp_initiated_logout_modified_id_token_hint => "oidcc-rp-initiated-logout-modified-id-token-hint",
        oidcc_rp_initiated_logout_no_id_token_hint => "oidcc-rp-initiated-logout-no-id-token-hint",
        oidcc_rp_initiated_logout_no_params => "oidcc-rp-initiated-logout-no-params",
        oidcc_rp_initiated_logout_no_post_logout_redirect_uri => "oidcc-rp-initiated-logout-no-post-logout-redirect-uri",
        oidcc_rp_initiated_logout_no_state => "oidcc-rp-initiated-logout-no-state",
        oidcc_rp_initiated_logout_only_state => "oidcc-rp-initiated-logout-only-state",
        oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri => "oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri",
        oidcc_rp_initiated_logout_bad_id_token_hint => "oidcc-rp-initiated-logout-bad-id-token-hint",
    }
}

/// `oidcc-backchannel-rp-initiated-logout-certification-test-plan`
mod backchannel_logout {
    modules! { super::Plan::BackChannelLogout;
        oidcc_backchannel_logout_discovery_endpoint_verification => "oidcc-backchannel-logout-discovery-endpoint-verification",
        oidcc_backchannel_rp_initiated_logout => "oidcc-backchannel-rp-initiated-logout",
    }
}
