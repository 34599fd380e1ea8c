//! Property tests of the metadata endpoint's query string (issue 17): arbitrary query strings
//! on the IMDS token path (random bytes percent-encoded, repeated keys, huge values, odd
//! separators, broken escapes), with and without a valid `api-version` and `resource` in
//! front, never panic and are answered 200 with a token or in IMDS's error shape
//! (`{"error","error_description"}`, a 4xx).
//!
//! Method: the fake server and a real agent from `setup_with`, with the rate limit raised so
//! the cases are not answered 429; one current-thread runtime drives each case.

use std::cell::Cell;

use proptest::prelude::*;
use reqwest::{Method, StatusCode};

use crate::RateLimit;
use crate::tests::{VAULT, call, setup_with, user_identity, vm};

/// Parameter names the token path reads, and some it does not.
const KEYS: &[&str] = &[
    "api-version",
    "resource",
    "client_id",
    "object_id",
    "principal_id",
    "msi_res_id",
    "mi_res_id",
    "bypass_cache",
    "",
    "Resource",
    "api-version ",
];

/// Cases: enough to reach every parameter check, few enough for a second or two.
const CASES: u32 = 192;

fn percent_encoded(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("%{byte:02X}")).collect()
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(|bytes| percent_encoded(&bytes)),
        1 => "[a-z_=;+%-]{0,8}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    let client_id = user_identity(1).client_id;
    prop_oneof![
        2 => proptest::sample::select(vec![
            "2018-02-01".to_owned(),
            "2019-08-01".to_owned(),
            VAULT.to_owned(),
            client_id,
            "true".to_owned(),
        ]),
        2 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| percent_encoded(&bytes)),
        1 => (any::<u8>(), 1usize..16_000).prop_map(|(byte, length)| percent_encoded(&[byte]).repeat(length / 3)),
        1 => "[a-zA-Z0-9=&;+?/%.-]{0,40}",
        1 => "%[0-9a-zA-Z%]{0,3}",
    ]
}

/// One query: pairs (a key, an optional `=` and a value) joined by odd separators, after a
/// valid prefix when `valid_prefix`.
fn query() -> impl Strategy<Value = String> {
    let pair = (key(), any::<bool>(), value()).prop_map(|(key, equals, value)| {
        if equals { format!("{key}={value}") } else { format!("{key}{value}") }
    });
    let separator = prop_oneof![6 => Just("&"), 1 => Just("&&"), 1 => Just(";"), 1 => Just("")];
    let prefix = proptest::sample::select(vec![
        String::new(),
        format!("api-version=2018-02-01&resource={VAULT}&"),
        "api-version=2018-02-01&".to_owned(),
    ]);
    (prefix, proptest::collection::vec((pair, separator), 0..8)).prop_map(|(prefix, pairs)| {
        let rest: String =
            pairs.iter().map(|(pair, separator)| format!("{pair}{separator}")).collect();
        format!("{prefix}{rest}")
    })
}

#[test]
fn issue_17_arbitrary_imds_query_strings_answer_a_token_or_an_imds_error() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let setup = runtime.block_on(setup_with(
        |config| {
            config.rate_limit =
                RateLimit { requests_per_second: 1_000_000, burst: 1_000_000, concurrent: 64 }
        },
        vec![vm("vm1", true, &[1, 2])],
    ));
    let tokens = Cell::new(0usize);
    let config =
        ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&query(), |query| {
        let url = format!("{}/metadata/identity/oauth2/token?{query}", setup.base);
        let answer = runtime.block_on(call(Method::GET, &url, &[("Metadata", "true")]));
        if answer.status == StatusCode::OK {
            tokens.set(tokens.get() + 1);
            prop_assert!(answer.json()["access_token"].is_string(), "{}", answer.text);
            return Ok(());
        }
        prop_assert!(answer.status.is_client_error(), "{query}: {} {}", answer.status, answer.text);
        let body: serde_json::Value = serde_json::from_str(&answer.text)
            .map_err(|_| TestCaseError::fail(format!("not JSON: {}", answer.text)))?;
        prop_assert!(body["error"].as_str().is_some_and(|error| !error.is_empty()), "{body}");
        prop_assert!(body["error_description"].is_string(), "{body}");
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    // Some cases were valid requests, so the property covered the answer with a token too.
    assert!(tokens.get() > 0);
    // The endpoint still serves a plain request.
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={VAULT}",
        setup.base
    );
    let answer = runtime.block_on(call(Method::GET, &url, &[("Metadata", "true")]));
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}
