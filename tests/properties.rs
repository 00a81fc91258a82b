//! Property tests of the pure pieces the protocol's safety rests on: redirect-URI matching,
//! PKCE, the digests that codes and refresh tokens are stored as, and the `prompt` /
//! `max_age` / `auth_time` decision. Each property names the rule it checks; each can fail.

use proptest::prelude::*;
use tessera::oidc::authorize::pkce;
use tessera::oidc::authorize::prompt::{Needs, Progress, Prompt, SessionFacts, Step, next_step};
use tessera::oidc::authorize::redirect_uri::is_registered;
use tessera::security::{digest, hex, sha256};

/// An https redirect URI built from plausible parts.
fn web_uri() -> impl Strategy<Value = String> {
    (
        "[a-z]{1,10}(\\.[a-z]{2,6}){1,2}",
        prop::option::of(1u16..),
        "(/[a-zA-Z0-9_.~-]{1,8}){0,3}",
        prop::option::of("[a-z]{1,5}=[a-z0-9]{1,5}"),
    )
        .prop_map(|(host, port, path, query)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let query = query.map(|q| format!("?{q}")).unwrap_or_default();
            format!("https://{host}{port}{path}{query}")
        })
}

/// The edits attackers make to a redirect URI: one character inserted, removed or case-flipped.
fn edit(uri: &str, position: usize, kind: u8, inserted: char) -> String {
    let chars: Vec<char> = uri.chars().collect();
    let at = position % (chars.len() + 1);
    let mut out = chars.clone();
    match kind % 3 {
        0 => out.insert(at, inserted),
        1 if at < chars.len() => {
            out.remove(at);
        }
        _ if at < chars.len() => {
            let c = chars[at];
            out[at] = if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
        }
        _ => out.push(inserted),
    }
    out.into_iter().collect()
}

proptest! {
    /// RFC 9700 §4.1.1: for web clients a requested URI matches exactly when it is equal,
    /// character for character, to a registered one.
    #[test]
    fn web_redirect_uris_match_only_when_identical(
        registered in web_uri(),
        position in 0usize..200,
        kind in 0u8..3,
        inserted in prop::sample::select(vec!['/', '.', '@', ':', '#', '?', '%', '\\', 'A', 'a', '0', '\u{0430}', ' ']),
    ) {
        let list = vec![registered.clone()];
        let requested = edit(&registered, position, kind, inserted);
        prop_assert_eq!(is_registered(&list, &requested), requested == registered);
    }

    /// RFC 8252 §7.3: a loopback redirect may change its port and nothing else.
    #[test]
    fn loopback_redirects_vary_only_by_port(
        host in prop::sample::select(vec!["127.0.0.1", "localhost", "[::1]"]),
        path in "(/[a-z0-9]{1,8}){1,3}",
        // Port 80 is left out: the URL parser drops http's default port, so an explicit ":80"
        // never matches (harmless: native apps listen on ephemeral ports).
        port in (1u16..).prop_filter("default port", |p| *p != 80),
        position in 0usize..200,
        kind in 0u8..3,
        inserted in prop::sample::select(vec!['/', '.', '@', '#', '?', 'A', 'x']),
    ) {
        let registered = format!("http://{host}{path}");
        let list = vec![registered.clone()];
        let with_port = format!("http://{host}:{port}{path}");
        prop_assert!(is_registered(&list, &with_port));
        let edited = edit(&with_port, position, kind, inserted);
        // An edit that only touches the port's digits stays a loopback match; any other is refused.
        let port_only = edited.strip_prefix(&format!("http://{host}:"))
            .and_then(|rest| rest.strip_suffix(path.as_str()))
            .is_some_and(|p| p.parse::<u16>().is_ok_and(|n| n > 0 && n != 80) && !p.starts_with('0'));
        prop_assert_eq!(is_registered(&list, &edited), port_only || edited == registered);
    }

    /// RFC 7636 §4.6: a verifier proves its own S256 challenge, and an altered challenge or
    /// verifier proves nothing.
    #[test]
    fn pkce_accepts_only_the_matching_verifier(
        verifier in "[A-Za-z0-9._~-]{43,128}",
        position in 0usize..128,
        replacement in "[A-Za-z0-9_-]",
    ) {
        let challenge = pkce::s256(&verifier);
        prop_assert!(pkce::is_valid_challenge(&challenge));
        prop_assert!(pkce::verify(&challenge, &verifier));
        let at = position % challenge.len();
        let mut altered = challenge.clone();
        altered.replace_range(at..=at, &replacement);
        prop_assert_eq!(pkce::verify(&altered, &verifier), altered == challenge);
        let mut other = verifier.clone();
        let at = position % verifier.len();
        other.replace_range(at..=at, &replacement);
        prop_assert_eq!(pkce::verify(&challenge, &other), other == verifier);
    }

    /// §4.1: verifiers shorter than 43 or longer than 128 characters never verify, even
    /// against their own challenge.
    #[test]
    fn pkce_refuses_verifiers_of_the_wrong_length(
        short in "[A-Za-z0-9]{0,42}",
        long in "[A-Za-z0-9]{129,200}",
    ) {
        prop_assert!(!pkce::verify(&pkce::s256(&short), &short));
        prop_assert!(!pkce::verify(&pkce::s256(&long), &long));
    }

    /// Codes and refresh tokens are stored as SHA-256 hex: 64 lowercase hex digits, the same
    /// for the same secret, different for different ones, and never containing the secret.
    #[test]
    fn token_digests_are_sha256_hex_of_the_secret(a in "[A-Za-z0-9_-]{8,64}", b in "[A-Za-z0-9_-]{8,64}") {
        let d = digest(&a);
        prop_assert_eq!(d.len(), 64);
        prop_assert!(d.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        prop_assert_eq!(&d, &hex(&sha256(a.as_bytes())));
        prop_assert!(!d.contains(&a));
        prop_assert_eq!(d == digest(&b), a == b);
    }

    /// OIDC Core §3.1.2.1: prompt values in any order and spacing mean the same; "none"
    /// with another value and unknown values are errors.
    #[test]
    fn prompt_values_parse_in_any_order(
        values in prop::sample::subsequence(vec!["login", "consent", "select_account"], 0..=3),
        shuffle in any::<bool>(),
        spaces in 1usize..4,
        with_none in any::<bool>(),
        unknown in prop::option::of("[a-z]{1,6}"),
    ) {
        let known = ["none", "login", "consent", "select_account"];
        prop_assume!(unknown.as_deref().is_none_or(|u| !known.contains(&u)));
        let mut words: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        if shuffle { words.reverse(); }
        if with_none { words.push("none".into()); }
        if let Some(u) = &unknown { words.push(u.clone()); }
        let text = words.join(&" ".repeat(spaces));
        let parsed = Prompt::parse(Some(&text));
        if unknown.is_some() || (with_none && !values.is_empty()) {
            prop_assert!(parsed.is_err(), "{text:?} parsed");
        } else {
            let p = parsed.unwrap();
            prop_assert_eq!(p.login, values.contains(&"login"));
            prop_assert_eq!(p.consent, values.contains(&"consent"));
            prop_assert_eq!(p.select_account, values.contains(&"select_account"));
            prop_assert_eq!(p.none, with_none);
        }
    }

    /// max_age: the later the request (or the smaller max_age), the more likely a sign-in is
    /// needed, never the reverse; and exactly at the boundary the session is still good.
    #[test]
    fn max_age_decisions_are_monotonic(
        auth_time in 0i64..1_000_000,
        elapsed in 0i64..100_000,
        later in 0i64..100_000,
        max_age in 1i64..100_000,
        tighter in 0i64..100_000,
    ) {
        let session = SessionFacts { user_id: "u", session_id: "s", auth_time };
        let needs = |max_age| Needs { prompt: Prompt::default(), max_age: Some(max_age), hinted_subject: None };
        let progress = Progress::default();
        let now = auth_time + elapsed;
        let step = next_step(&needs(max_age), Some(&session), &progress, now);
        prop_assert_eq!(step == Step::SignIn, elapsed > max_age);
        if step == Step::SignIn {
            prop_assert_eq!(next_step(&needs(max_age), Some(&session), &progress, now + later), Step::SignIn);
            prop_assert_eq!(next_step(&needs((max_age - tighter).max(0)), Some(&session), &progress, now), Step::SignIn);
        }
        prop_assert_eq!(next_step(&needs(max_age), Some(&session), &progress, auth_time + max_age), Step::Issue);
    }

    /// An id_token_hint naming another user always means a sign-in, whatever else holds; and
    /// without a session there is nothing to decide but a sign-in.
    #[test]
    fn hint_mismatch_and_no_session_always_sign_in(
        login in any::<bool>(), consent in any::<bool>(), select_account in any::<bool>(),
        consented in any::<bool>(), confirmed in any::<bool>(),
        max_age in prop::option::of(0i64..10_000),
        auth_time in 0i64..1_000_000, elapsed in 0i64..10_000,
        hinted in "[a-z]{1,4}", user in "[a-z]{1,4}",
    ) {
        let session = SessionFacts { user_id: &user, session_id: "s", auth_time };
        let needs = Needs { prompt: Prompt { none: false, login, consent, select_account }, max_age, hinted_subject: Some(&hinted) };
        let progress = Progress { confirmed_session: confirmed.then_some("s"), started_at: auth_time, consented };
        let now = auth_time + elapsed;
        let step = next_step(&needs, Some(&session), &progress, now);
        if hinted != user {
            prop_assert_eq!(step, Step::SignIn);
        }
        prop_assert_eq!(next_step(&needs, None, &progress, now), Step::SignIn);
        if consented && step == Step::Consent {
            prop_assert!(false, "consent asked again after it was given");
        }
    }
}
