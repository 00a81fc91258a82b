//! Runs every committed fuzz seed (`fuzz/corpus/<target>/*`) through the entry point its
//! `cargo fuzz` target calls, on stable and in plain `cargo test`: the targets cannot rot,
//! and an input that once crashed a target stays fixed once its file is committed.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    (
        "authorization_request",
        tessera::fuzzing::authorization_request,
    ),
    ("token_request", tessera::fuzzing::token_request),
    ("client_auth", tessera::fuzzing::basic_header),
    ("jwt", tessera::fuzzing::jwt),
    ("redirect_uri", tessera::fuzzing::redirect_uri),
    ("cookie", tessera::fuzzing::cookie),
];

#[test]
fn every_fuzz_target_runs_its_whole_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut total = 0;
    for (name, run) in TARGETS {
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("path = \"fuzz_targets/{name}.rs\"")),
            "fuzz/Cargo.toml declares no target {name}"
        );
        let dir = root.join("corpus").join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 3, "{name}: the seed corpus is too small");
        for file in &files {
            let input = std::fs::read(file).unwrap();
            run(&input);
        }
        total += files.len();
        println!("fuzz corpus {name}: {} inputs", files.len());
    }
    println!(
        "fuzz corpus: {total} inputs through {} targets",
        TARGETS.len()
    );
}

/// The JWT target's second half signs each input with the real key: a payload that is a
/// valid access token must then pass, or that half would check nothing.
#[test]
fn a_genuinely_signed_access_token_passes_the_jwt_checks() {
    let keys = tessera::fuzzing::keys();
    let claims = br#"{"iss":"https://issuer.example","sub":"u1","client_id":"app","scope":"openid","exp":4102444800,"gid":"g1"}"#;
    let token = tessera::fuzzing::signed_with_payload(keys, "at+jwt", claims);
    let sealing_key = tessera::tokens::access_token::sealing_key(b"any deployment");
    let validated = tessera::tokens::access_token::validate(
        keys,
        &sealing_key,
        &token,
        tessera::fuzzing::ISSUER,
        0,
        0,
    )
    .expect("a token signed by the key set validates");
    assert_eq!(validated.sub, "u1");
    let signature_at = token.rfind('.').unwrap() + 1;
    let flipped = if &token[signature_at..=signature_at] == "A" {
        "B"
    } else {
        "A"
    };
    let tampered = format!(
        "{}{flipped}{}",
        &token[..signature_at],
        &token[signature_at + 1..]
    );
    assert!(tessera::tokens::jws::verify(keys, &tampered).is_err());
}
