//! `prompt`, `max_age` and the decision what a request needs next (OIDC Core §3.1.2.1,
//! §3.1.2.3). Kept free of I/O so the rules can be tested alone.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

impl Prompt {
    pub fn parse(value: Option<&str>) -> Result<Prompt, String> {
        let mut p = Prompt::default();
        for v in value.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                "select_account" => p.select_account = true,
                other => return Err(format!("unsupported prompt value {other:?}")),
            }
        }
        // §3.1.2.1: "none" with any other value is an error.
        if p.none && (p.login || p.consent || p.select_account) {
            return Err("prompt=none cannot be combined with other values".into());
        }
        Ok(p)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Everything needed is there: issue the code.
    Issue,
    SignIn,
    SelectAccount,
    Consent,
}

/// What the decision needs to know about the browser's session, if any.
pub struct SessionFacts<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub auth_time: i64,
}

/// What the user already did for this pending request.
#[derive(Default)]
pub struct Progress<'a> {
    /// The session the user signed in with (or confirmed) for this request.
    pub confirmed_session: Option<&'a str>,
    /// When the request began waiting: a sign-in after this is fresh.
    pub started_at: i64,
    pub consented: bool,
}

pub struct Needs<'a> {
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    /// The `sub` of a valid `id_token_hint`: only that user may continue.
    pub hinted_subject: Option<&'a str>,
}

pub fn next_step(
    needs: &Needs<'_>,
    session: Option<&SessionFacts<'_>>,
    progress: &Progress<'_>,
    now: i64,
) -> Step {
    let Some(s) = session else {
        return Step::SignIn;
    };
    let confirmed = progress.confirmed_session == Some(s.session_id);
    let fresh = confirmed && s.auth_time >= progress.started_at;
    let hint_mismatch = needs.hinted_subject.is_some_and(|sub| sub != s.user_id);
    if hint_mismatch {
        return Step::SignIn;
    }
    if !fresh {
        // §3.1.2.1: max_age=0 is equivalent to prompt=login.
        let too_old = needs
            .max_age
            .is_some_and(|max| now - s.auth_time > max || max == 0);
        if needs.prompt.login || too_old {
            return Step::SignIn;
        }
    }
    if needs.prompt.select_account && !confirmed {
        return Step::SelectAccount;
    }
    if needs.prompt.consent && !progress.consented {
        return Step::Consent;
    }
    Step::Issue
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(prompt: &str, max_age: Option<i64>) -> Needs<'static> {
        Needs {
            prompt: Prompt::parse(Some(prompt)).unwrap(),
            max_age,
            hinted_subject: None,
        }
    }

    const S: SessionFacts<'static> = SessionFacts {
        user_id: "u1",
        session_id: "s1",
        auth_time: 1000,
    };

    #[test]
    fn prompt_parsing() {
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("bogus")).is_err());
        let p = Prompt::parse(Some("login consent")).unwrap();
        assert!(p.login && p.consent && !p.none);
    }

    #[test]
    fn no_session_needs_sign_in() {
        assert_eq!(
            next_step(&needs("", None), None, &Progress::default(), 2000),
            Step::SignIn
        );
    }

    #[test]
    fn sso_and_prompt_login() {
        let p = Progress::default();
        assert_eq!(next_step(&needs("", None), Some(&S), &p, 2000), Step::Issue);
        assert_eq!(
            next_step(&needs("login", None), Some(&S), &p, 2000),
            Step::SignIn
        );
        // After a fresh sign-in for this request, prompt=login is satisfied.
        let done = Progress {
            confirmed_session: Some("s1"),
            started_at: 900,
            consented: false,
        };
        assert_eq!(
            next_step(&needs("login", None), Some(&S), &done, 2000),
            Step::Issue
        );
        // A confirmation older than the request is not a fresh sign-in.
        let stale = Progress {
            confirmed_session: Some("s1"),
            started_at: 1500,
            consented: false,
        };
        assert_eq!(
            next_step(&needs("login", None), Some(&S), &stale, 2000),
            Step::SignIn
        );
    }

    #[test]
    fn max_age_boundaries() {
        let p = Progress::default();
        assert_eq!(
            next_step(&needs("", Some(1000)), Some(&S), &p, 2000),
            Step::Issue
        );
        assert_eq!(
            next_step(&needs("", Some(999)), Some(&S), &p, 2000),
            Step::SignIn
        );
        assert_eq!(
            next_step(&needs("", Some(0)), Some(&S), &p, 1000),
            Step::SignIn
        );
    }

    #[test]
    fn hint_mismatch_and_interactions() {
        let p = Progress::default();
        let n = Needs {
            prompt: Prompt::default(),
            max_age: None,
            hinted_subject: Some("u2"),
        };
        assert_eq!(next_step(&n, Some(&S), &p, 2000), Step::SignIn);
        assert_eq!(
            next_step(&needs("select_account", None), Some(&S), &p, 2000),
            Step::SelectAccount
        );
        assert_eq!(
            next_step(&needs("consent", None), Some(&S), &p, 2000),
            Step::Consent
        );
        let consented = Progress {
            consented: true,
            ..Progress::default()
        };
        assert_eq!(
            next_step(&needs("consent", None), Some(&S), &consented, 2000),
            Step::Issue
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// max_age re-prompts exactly when the session's authentication is older than it.
        #[test]
        fn max_age_boundary(auth_time in 0i64..1_000_000, age in 0i64..100_000, max_age in 0i64..100_000) {
            let session = SessionFacts { user_id: "u", session_id: "s", auth_time };
            let needs = Needs { prompt: Prompt::default(), max_age: Some(max_age), hinted_subject: None };
            let step = next_step(&needs, Some(&session), &Progress::default(), auth_time + age);
            let expected = if age > max_age || max_age == 0 { Step::SignIn } else { Step::Issue };
            prop_assert_eq!(step, expected);
        }

        /// A fresh sign-in for this request satisfies prompt=login and any max_age.
        #[test]
        fn fresh_sign_in_satisfies_reauthentication(started in 0i64..1_000_000, delay in 0i64..1000, max_age in 0i64..100) {
            let session = SessionFacts { user_id: "u", session_id: "s", auth_time: started + delay };
            let progress = Progress { confirmed_session: Some("s"), started_at: started, consented: false };
            let needs = Needs { prompt: Prompt { login: true, ..Prompt::default() }, max_age: Some(max_age), hinted_subject: None };
            prop_assert_eq!(next_step(&needs, Some(&session), &progress, started + delay), Step::Issue);
        }
    }
}
