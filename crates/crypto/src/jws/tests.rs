//! Tests for the JWS module: round trips, snapshots with fixed keys, `jsonwebtoken` as an
//! independent oracle in both directions, one negative test per rejection reason, and property
//! tests that no input makes parsing panic.

use std::sync::{Arc, LazyLock};

use expect_test::{Expect, expect};
use proptest::prelude::*;
use serde_json::json;

use super::*;

/// Fixed RSA-2048 keys generated once with `openssl genpkey`, so snapshots are stable.
static KEY_A: LazyLock<Arc<RsaSigningKey>> =
    LazyLock::new(|| Arc::new(load_key(include_str!("testdata/rsa-a.pem"))));
static KEY_B: LazyLock<Arc<RsaSigningKey>> =
    LazyLock::new(|| Arc::new(load_key(include_str!("testdata/rsa-b.pem"))));

const ALL: &[Algorithm] = &[Algorithm::RS256, Algorithm::PS256];

fn load_key(pem: &str) -> RsaSigningKey {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    assert_eq!(pem.label, "PRIVATE KEY");
    RsaSigningKey::from_pkcs8_der(&pem.contents).unwrap()
}

fn claims() -> serde_json::Value {
    json!({"aud": "https://vault.azure.net", "iss": "https://sts.example/t/", "sub": "app"})
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with arbitrary header JSON and payload, signed by `key` with `alg`.
fn forge(header_json: &str, payload: &[u8], key: &RsaSigningKey, alg: Algorithm) -> String {
    let signing_input = format!("{}.{}", b64(header_json.as_bytes()), b64(payload));
    let signature = key.sign(alg, signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64(&signature))
}

/// Verifies `token` and renders the header and payload, or the error.
#[track_caller]
fn check(token: &str, allowed: &[Algorithm], key: &RsaPublicKey, expect: Expect) {
    let actual = match verify(token, allowed, key) {
        Ok(verified) => format!(
            "Ok {} {}",
            serde_json::to_string(verified.header()).unwrap(),
            String::from_utf8_lossy(verified.payload())
        ),
        Err(error) => format!("Err {error:?}: {error}"),
    };
    expect.assert_eq(&actual);
}

#[test]
fn rs256_round_trip() {
    let token = encode(&JwsHeader::new(Algorithm::RS256), &claims(), &KEY_A).unwrap();
    check(
        &token,
        &[Algorithm::RS256],
        KEY_A.public_key(),
        expect![[
            r#"Ok {"typ":"JWT","alg":"RS256"} {"aud":"https://vault.azure.net","iss":"https://sts.example/t/","sub":"app"}"#
        ]],
    );
}

#[test]
fn ps256_round_trip() {
    let header = JwsHeader { x5t_s256: Some("abc".to_owned()), ..JwsHeader::new(Algorithm::PS256) };
    let token = encode(&header, &claims(), &KEY_A).unwrap();
    check(
        &token,
        &[Algorithm::PS256],
        KEY_A.public_key(),
        expect![[
            r#"Ok {"typ":"JWT","alg":"PS256","x5t#S256":"abc"} {"aud":"https://vault.azure.net","iss":"https://sts.example/t/","sub":"app"}"#
        ]],
    );
}

#[test]
fn rs256_is_deterministic_and_matches_a_snapshot() {
    // RS256 (PKCS#1 v1.5) has no randomness, so a fixed key gives a fixed token.
    let token = encode_bytes(&JwsHeader::new(Algorithm::RS256), b"{}", &KEY_A).unwrap();
    assert_eq!(token, encode_bytes(&JwsHeader::new(Algorithm::RS256), b"{}", &KEY_A).unwrap());
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    expect!["eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30"].assert_eq(signing_input);
    assert_eq!(signature.len(), 342, "256-byte signature in base64url");
    expect!["6REgZqrAIaqi26QkqOoPJVx6uOd-vozs3U-4G6h83V0"]
        .assert_eq(&b64(&hash::sha256(signature.as_bytes())));
}

#[test]
fn signer_matches_encode_and_reuses_its_header() {
    let header = JwsHeader { kid: Some("k1".to_owned()), ..JwsHeader::new(Algorithm::RS256) };
    let signer = Signer::new(KEY_A.clone(), header.clone()).unwrap();
    assert_eq!(signer.algorithm(), Algorithm::RS256);
    assert_eq!(signer.header(), &header);
    assert_eq!(signer.sign_json(&claims()).unwrap(), encode(&header, &claims(), &KEY_A).unwrap());
    assert_eq!(signer.sign(b"raw").unwrap(), encode_bytes(&header, b"raw", &KEY_A).unwrap());
}

#[test]
fn signer_rejects_an_unsupported_header_alg() {
    let header = JwsHeader { alg: "HS256".to_owned(), ..JwsHeader::default() };
    expect!["unsupported algorithm: HS256"]
        .assert_eq(&Signer::new(KEY_A.clone(), header).unwrap_err().to_string());
}

#[test]
fn our_tokens_verify_with_jsonwebtoken() {
    let public = KEY_A.public_key();
    let decoding_key = jsonwebtoken::DecodingKey::from_rsa_raw_components(public.n(), public.e());
    for (ours, theirs) in [
        (Algorithm::RS256, jsonwebtoken::Algorithm::RS256),
        (Algorithm::PS256, jsonwebtoken::Algorithm::PS256),
    ] {
        let token = encode(&JwsHeader::new(ours), &claims(), &KEY_A).unwrap();
        let decoded =
            jsonwebtoken::decode::<serde_json::Value>(&token, &decoding_key, &validation(theirs))
                .unwrap();
        assert_eq!(decoded.claims, claims());
        assert_eq!(decoded.header.alg, theirs);

        let other_key = jsonwebtoken::DecodingKey::from_rsa_raw_components(
            KEY_B.public_key().n(),
            KEY_B.public_key().e(),
        );
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(&token, &other_key, &validation(theirs))
                .is_err()
        );
    }
}

#[test]
fn jsonwebtoken_tokens_verify_with_us() {
    let pkcs1 = pkcs1_from_pkcs8(&KEY_A.to_pkcs8_der().unwrap());
    let encoding_key = jsonwebtoken::EncodingKey::from_rsa_der(&pkcs1);
    for (theirs, ours) in [
        (jsonwebtoken::Algorithm::RS256, Algorithm::RS256),
        (jsonwebtoken::Algorithm::PS256, Algorithm::PS256),
    ] {
        let mut header = jsonwebtoken::Header::new(theirs);
        header.kid = Some("kid-1".to_owned());
        let token = jsonwebtoken::encode(&header, &claims(), &encoding_key).unwrap();
        let verified = verify(&token, &[ours], KEY_A.public_key()).unwrap();
        assert_eq!(verified.claims::<serde_json::Value>().unwrap(), claims());
        assert_eq!(verified.header().kid.as_deref(), Some("kid-1"));
        assert_eq!(verified.header().algorithm().unwrap(), ours);
        assert!(matches!(
            verify(&token, &[ours], KEY_B.public_key()),
            Err(Error::InvalidSignature)
        ));
    }
}

#[test]
fn alg_none_is_unsupported() {
    let token = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(b"{}"));
    check(
        &token,
        ALL,
        KEY_A.public_key(),
        expect![[r#"Err UnsupportedAlgorithm("none"): unsupported algorithm: none"#]],
    );
}

#[test]
fn hs256_signed_with_the_public_key_is_unsupported() {
    // The classic confusion attack: HMAC keyed with the verifier's public key bytes.
    let public_der = aws_lc_rs::rsa::PublicKeyComponents {
        n: KEY_A.public_key().n(),
        e: KEY_A.public_key().e(),
    }
    .as_der()
    .unwrap();
    let signing_input = format!("{}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), b64(b"{}"));
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, public_der.as_ref());
    let tag = aws_lc_rs::hmac::sign(&hmac_key, signing_input.as_bytes());
    let token = format!("{signing_input}.{}", b64(tag.as_ref()));
    check(
        &token,
        ALL,
        KEY_A.public_key(),
        expect![[r#"Err UnsupportedAlgorithm("HS256"): unsupported algorithm: HS256"#]],
    );
}

#[test]
fn other_algorithms_are_unsupported_and_the_name_is_cut_short() {
    for alg in ["ES256", "EdDSA", "rs256", "RS256 ", ""] {
        let token = forge(&format!(r#"{{"alg":"{alg}"}}"#), b"{}", &KEY_A, Algorithm::RS256);
        assert!(
            matches!(verify(&token, ALL, KEY_A.public_key()), Err(Error::UnsupportedAlgorithm(_))),
            "{alg:?}"
        );
    }
    let long = format!(r#"{{"alg":"{}\n"}}"#, "X".repeat(100));
    let token = forge(&long.replace('\n', "\\n"), b"{}", &KEY_A, Algorithm::RS256);
    let Err(Error::UnsupportedAlgorithm(shown)) = verify(&token, ALL, KEY_A.public_key()) else {
        panic!("expected UnsupportedAlgorithm");
    };
    assert_eq!(shown, "X".repeat(32));
}

#[test]
fn disallowed_algorithm_is_rejected_before_the_signature() {
    let token = encode(&JwsHeader::new(Algorithm::RS256), &claims(), &KEY_A).unwrap();
    check(
        &token,
        &[Algorithm::PS256],
        KEY_A.public_key(),
        expect!["Err AlgorithmNotAllowed(RS256): algorithm not allowed: RS256"],
    );
    check(
        &token,
        &[],
        KEY_A.public_key(),
        expect!["Err AlgorithmNotAllowed(RS256): algorithm not allowed: RS256"],
    );
}

#[test]
fn tampered_payload_fails() {
    let token = encode(&JwsHeader::new(Algorithm::RS256), &claims(), &KEY_A).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(br#"{"sub":"admin"}"#), parts[2]);
    check(&tampered, ALL, KEY_A.public_key(), expect!["Err InvalidSignature: invalid signature"]);
}

#[test]
fn tampered_header_fails() {
    // Switching PS256 to RS256 in the header changes the signing input, so the signature fails.
    let token = encode(&JwsHeader::new(Algorithm::PS256), &claims(), &KEY_A).unwrap();
    let (_, rest) = token.split_once('.').unwrap();
    let tampered = format!("{}.{rest}", b64(br#"{"typ":"JWT","alg":"RS256"}"#));
    check(&tampered, ALL, KEY_A.public_key(), expect!["Err InvalidSignature: invalid signature"]);
}

#[test]
fn tampered_signature_fails() {
    for alg in ALL {
        let token = encode(&JwsHeader::new(*alg), &claims(), &KEY_A).unwrap();
        let (signing_input, signature) = token.rsplit_once('.').unwrap();
        let mut signature = BASE64URL_STRICT.decode(signature).unwrap();
        signature[100] ^= 1;
        let tampered = format!("{signing_input}.{}", b64(&signature));
        check(
            &tampered,
            ALL,
            KEY_A.public_key(),
            expect!["Err InvalidSignature: invalid signature"],
        );
        let truncated = format!("{signing_input}.{}", b64(&signature[..255]));
        check(
            &truncated,
            ALL,
            KEY_A.public_key(),
            expect!["Err InvalidSignature: invalid signature"],
        );
    }
}

#[test]
fn wrong_key_fails() {
    let token = encode(&JwsHeader::new(Algorithm::RS256), &claims(), &KEY_A).unwrap();
    check(&token, ALL, KEY_B.public_key(), expect!["Err InvalidSignature: invalid signature"]);
}

#[test]
fn crit_header_is_rejected() {
    let token = forge(r#"{"alg":"RS256","crit":["exp"]}"#, b"{}", &KEY_A, Algorithm::RS256);
    check(
        &token,
        ALL,
        KEY_A.public_key(),
        expect![[
            r#"Err MalformedToken("crit header is not supported"): malformed token: crit header is not supported"#
        ]],
    );
}

#[test]
fn garbage_is_malformed() {
    #[track_caller]
    fn malformed(token: &str, expect: Expect) {
        check(token, ALL, KEY_A.public_key(), expect);
    }
    malformed(
        "",
        expect![[
            r#"Err MalformedToken("expected three dot-separated segments"): malformed token: expected three dot-separated segments"#
        ]],
    );
    malformed(
        "a.b",
        expect![[
            r#"Err MalformedToken("expected three dot-separated segments"): malformed token: expected three dot-separated segments"#
        ]],
    );
    malformed(
        "a.b.c.d",
        expect![[
            r#"Err MalformedToken("expected three dot-separated segments"): malformed token: expected three dot-separated segments"#
        ]],
    );
    malformed(
        "..",
        expect![[
            r#"Err MalformedToken("header is not a valid jose header"): malformed token: header is not a valid jose header"#
        ]],
    );
    malformed(
        "!!.e30.",
        expect![[
            r#"Err MalformedToken("header is not base64url"): malformed token: header is not base64url"#
        ]],
    );
    malformed(
        &format!("{}.e30.sig", b64(b"[1]")),
        expect![[
            r#"Err MalformedToken("header is not a valid jose header"): malformed token: header is not a valid jose header"#
        ]],
    );
    malformed(
        &format!("{}.e30.sig", b64(br#"{"typ":"JWT"}"#)),
        expect![[
            r#"Err MalformedToken("header is not a valid jose header"): malformed token: header is not a valid jose header"#
        ]],
    );
    malformed(
        &format!("{}.e30.sig", b64(br#"{"alg":"RS256","alg":"none"}"#)),
        expect![[
            r#"Err MalformedToken("header is not a valid jose header"): malformed token: header is not a valid jose header"#
        ]],
    );
    malformed(
        &format!("{}.e30.s+g", b64(br#"{"alg":"RS256"}"#)),
        expect![[
            r#"Err MalformedToken("signature is not base64url"): malformed token: signature is not base64url"#
        ]],
    );
    malformed(
        &"a".repeat(TOKEN_BYTES_MAX + 1),
        expect![[
            r#"Err MalformedToken("token is too large"): malformed token: token is too large"#
        ]],
    );
}

#[test]
fn bad_payload_encoding_is_caught_after_the_signature() {
    // The signature covers the encoded payload, so a signed but undecodable payload is
    // malformed, not a signature failure.
    let header_b64 = b64(br#"{"alg":"RS256"}"#);
    let signing_input = format!("{header_b64}.@@@");
    let signature = KEY_A.sign_rs256(signing_input.as_bytes()).unwrap();
    let token = format!("{signing_input}.{}", b64(&signature));
    check(
        &token,
        ALL,
        KEY_A.public_key(),
        expect![[
            r#"Err MalformedToken("payload is not base64url"): malformed token: payload is not base64url"#
        ]],
    );
}

#[test]
fn padded_segments_are_refused() {
    // Issue 17: base64url with `=` padding is not the JWS encoding (RFC 7515 §2), in any segment.
    // A 2-byte payload needs one padding character when padded.
    let header_b64 = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    let signing_input = format!("{header_b64}.e30=");
    let signature = KEY_A.sign_rs256(signing_input.as_bytes()).unwrap();
    let padded_signature = base64::engine::general_purpose::URL_SAFE.encode(&signature);
    check(
        &format!("{signing_input}.{padded_signature}"),
        ALL,
        KEY_A.public_key(),
        expect![[
            r#"Err MalformedToken("signature is not base64url"): malformed token: signature is not base64url"#
        ]],
    );
    // Padding on the payload alone: the signature covers the padded text, so only the payload's
    // encoding can refuse it.
    let unpadded_signature = b64(&signature);
    check(
        &format!("{signing_input}.{unpadded_signature}"),
        ALL,
        KEY_A.public_key(),
        expect![[
            r#"Err MalformedToken("payload is not base64url"): malformed token: payload is not base64url"#
        ]],
    );
    // A valid token with padding added to its signature (256 bytes encode with one `=`).
    let token = encode(&JwsHeader::new(Algorithm::RS256), &claims(), &KEY_A).unwrap();
    check(
        &format!("{token}="),
        ALL,
        KEY_A.public_key(),
        expect![[
            r#"Err MalformedToken("signature is not base64url"): malformed token: signature is not base64url"#
        ]],
    );
    // And on the header: `{"alg":"RS256"}` is 15 bytes, which pads with one `=`.
    let (_, rest) = token.split_once('.').unwrap();
    assert!(matches!(
        decode_header(&format!("{}=.{rest}", b64(br#"{"alg":"RS256"}"#))),
        Err(Error::MalformedToken("header is not base64url"))
    ));
}

#[test]
fn decode_header_reads_key_identifiers_without_verifying() {
    // MSAL Python writes a padded x5t inside the header JSON; the value is kept as written.
    let header = r#"{"alg":"RS256","typ":"JWT","x5t":"q3hPYz6T8r2p8y3WpGNKWeZ9bTQ=","x5t#S256":"s256","kid":"k","x5c":["MIIB"],"extra":1}"#;
    let token = format!("{}.{}.{}", b64(header.as_bytes()), b64(b"{}"), b64(b"not a signature"));
    expect![[r#"
        JwsHeader {
            typ: Some(
                "JWT",
            ),
            alg: "RS256",
            x5t: Some(
                "q3hPYz6T8r2p8y3WpGNKWeZ9bTQ=",
            ),
            kid: Some(
                "k",
            ),
            x5t_s256: Some(
                "s256",
            ),
            x5c: Some(
                [
                    "MIIB",
                ],
            ),
            crit: None,
        }
    "#]]
    .assert_debug_eq(&decode_header(&token).unwrap());
    assert!(matches!(decode_header("x.y"), Err(Error::MalformedToken(_))));
}

#[test]
fn thumbprints_compare_with_and_without_padding() {
    assert!(thumbprint_matches("q3hPYz6T8r2p8y3WpGNKWeZ9bTQ=", "q3hPYz6T8r2p8y3WpGNKWeZ9bTQ"));
    assert!(thumbprint_matches("q3hPYz6T8r2p8y3WpGNKWeZ9bTQ", "q3hPYz6T8r2p8y3WpGNKWeZ9bTQ"));
    assert!(!thumbprint_matches("q3hPYz6T8r2p8y3WpGNKWeZ9bTR", "q3hPYz6T8r2p8y3WpGNKWeZ9bTQ"));
    assert!(!thumbprint_matches("", ""));
    assert!(!thumbprint_matches("=", ""));
}

#[test]
fn public_key_sources_agree() {
    let public = KEY_A.public_key();
    let spki =
        aws_lc_rs::rsa::PublicKeyComponents { n: public.n(), e: public.e() }.as_der().unwrap();
    assert_eq!(&RsaPublicKey::from_spki_der(spki.as_ref()).unwrap(), public);
    assert_eq!(&RsaPublicKey::from_jwk(&public.to_jwk("k")).unwrap(), public);
    let mut padded_n = vec![0];
    padded_n.extend_from_slice(public.n());
    assert_eq!(&RsaPublicKey::from_components(&padded_n, public.e()).unwrap(), public);
    assert_eq!(public.modulus_bits(), 2048);
    assert_eq!(public.e(), [1, 0, 1]);
    assert_ne!(KEY_A.public_key(), KEY_B.public_key());
}

#[test]
fn small_and_invalid_public_keys_are_rejected() {
    let public = KEY_A.public_key();
    expect!["invalid key: rsa modulus must have 2048 to 8192 bits"].assert_eq(
        &RsaPublicKey::from_components(&public.n()[1..], public.e()).unwrap_err().to_string(),
    );
    expect!["invalid key: rsa modulus must have 2048 to 8192 bits"]
        .assert_eq(&RsaPublicKey::from_components(&[], public.e()).unwrap_err().to_string());
    expect!["invalid key: not a valid rsa public key"]
        .assert_eq(&RsaPublicKey::from_components(public.n(), &[]).unwrap_err().to_string());
    expect!["invalid key: not an rsa public key"]
        .assert_eq(&RsaPublicKey::from_spki_der(b"junk").unwrap_err().to_string());
    assert!(matches!(
        RsaPublicKey::from_certificate_der(b"junk"),
        Err(Error::InvalidCertificate(_))
    ));
}

#[test]
fn signing_key_round_trips_through_pkcs8_and_hides_its_secret() {
    let der = KEY_A.to_pkcs8_der().unwrap();
    let again = RsaSigningKey::from_pkcs8_der(&der).unwrap();
    assert_eq!(again.public_key(), KEY_A.public_key());
    expect!["invalid key: not a pkcs#8 rsa private key of 2048 to 8192 bits"]
        .assert_eq(&RsaSigningKey::from_pkcs8_der(b"junk").unwrap_err().to_string());
    expect![[r#"RsaSigningKey { public_key: RsaPublicKey { bits: 2048, e: "AQAB", n_sha256: "pIzAMpfRW6WsfnGGcWJiPxIVUldhAqy-kJJOOSSo5K4" }, private_key: [redacted] }"#]]
        .assert_eq(&format!("{:?}", *KEY_A));
}

#[test]
fn generated_keys_are_2048_bits_and_sign() {
    let key = RsaSigningKey::generate_2048().unwrap();
    assert_eq!(key.public_key().modulus_bits(), 2048);
    let token = encode(&JwsHeader::new(Algorithm::PS256), &claims(), &key).unwrap();
    assert!(verify(&token, ALL, key.public_key()).is_ok());
}

#[test]
fn jwk_serializes_with_entra_member_names() {
    let jwk = Jwk {
        x5t: Some("k".to_owned()),
        x5c: vec!["MIIC".to_owned()],
        issuer: Some("https://login.example/t/v2.0".to_owned()),
        ..KEY_A.public_key().to_jwk("k")
    };
    let json = serde_json::to_string(&Jwks { keys: vec![jwk.clone()] }).unwrap();
    let n = b64(KEY_A.public_key().n());
    assert_eq!(
        json,
        format!(
            r#"{{"keys":[{{"kty":"RSA","use":"sig","kid":"k","x5t":"k","n":"{n}","e":"AQAB","x5c":["MIIC"],"issuer":"https://login.example/t/v2.0"}}]}}"#
        )
    );
    let parsed: Jwks = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed.find("k"), Some(&jwk));
    assert_eq!(parsed.find("other"), None);
}

#[test]
fn jwks_from_other_issuers_parse_and_unusable_keys_are_rejected() {
    // A Kubernetes-style set: `alg` present, no x5t/x5c; plus an EC key we cannot use.
    let n = b64(KEY_B.public_key().n());
    let json = format!(
        r#"{{"keys":[{{"use":"sig","kty":"RSA","kid":"sa","alg":"RS256","n":"{n}","e":"AQAB"}},{{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"ec"}}]}}"#
    );
    let jwks: Jwks = serde_json::from_str(&json).unwrap();
    assert_eq!(&RsaPublicKey::from_jwk(jwks.find("sa").unwrap()).unwrap(), KEY_B.public_key());
    assert_eq!(jwks.find("sa").unwrap().alg.as_deref(), Some("RS256"));

    #[track_caller]
    fn rejected(jwk: &Jwk, expect: Expect) {
        expect.assert_eq(&RsaPublicKey::from_jwk(jwk).unwrap_err().to_string());
    }
    rejected(jwks.find("ec").unwrap(), expect!["invalid jwk: kty is not RSA"]);
    let good = jwks.find("sa").unwrap().clone();
    rejected(
        &Jwk { key_use: Some("enc".to_owned()), ..good.clone() },
        expect!["invalid jwk: use is not sig"],
    );
    rejected(&Jwk { n: None, ..good.clone() }, expect!["invalid jwk: n is missing"]);
    rejected(&Jwk { e: None, ..good.clone() }, expect!["invalid jwk: e is missing"]);
    rejected(
        &Jwk { n: Some("a+b/".to_owned()), ..good },
        expect!["invalid jwk: n or e is not base64url"],
    );
}

#[test]
fn self_signed_certificate_backs_an_entra_style_jwk() {
    let not_before = domain::UnixTime::from_secs(1_704_067_200);
    let not_after = not_before.plus_secs(90 * 24 * 3600);
    let cert = self_signed_certificate_der(&KEY_A, "ambient token signing", not_before, not_after)
        .unwrap();
    let info = crate::pki::certificate_info(&cert).unwrap();
    assert_eq!(info.subject_cn.as_deref(), Some("ambient token signing"));
    assert_eq!(info.issuer_cn.as_deref(), Some("ambient token signing"));
    assert_eq!((info.not_before, info.not_after), (not_before, not_after));
    assert!(!info.is_ca);
    assert_eq!(info.sha1_thumbprint_b64url, x5t_sha1(&cert));
    assert_eq!(x5t_sha1(&cert).len(), 27);
    assert_eq!(x5t_sha256(&cert).len(), 43);

    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
    parsed.verify_signature(None).unwrap();

    let jwk =
        Jwk::from_certificate_der(&cert, Some("https://sts.example/t/v2.0".to_owned())).unwrap();
    assert_eq!(jwk.kid, Some(x5t_sha1(&cert)));
    assert_eq!(jwk.x5t, jwk.kid);
    assert_eq!(jwk.x5c, vec![STANDARD.encode(&cert)]);
    assert_eq!(&RsaPublicKey::from_jwk(&jwk).unwrap(), KEY_A.public_key());

    let header = JwsHeader::for_certificate(Algorithm::RS256, &cert);
    assert_eq!(header.kid, jwk.kid);
    assert_eq!(header.x5t, jwk.kid);
    let token = Signer::new(KEY_A.clone(), header).unwrap().sign_json(&claims()).unwrap();
    let by_cert = RsaPublicKey::from_certificate_der(&cert).unwrap();
    assert!(verify(&token, &[Algorithm::RS256], &by_cert).is_ok());

    assert!(matches!(
        self_signed_certificate_der(&KEY_A, "x", not_after, not_before),
        Err(Error::InvalidCertificateParams(_))
    ));
}

#[test]
fn signer_and_keys_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Signer>();
    assert_send_sync::<RsaSigningKey>();
    assert_send_sync::<RsaPublicKey>();
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(token in ".{0,300}") {
        let _ = decode_header(&token);
        let _ = verify(&token, ALL, KEY_A.public_key());
    }

    #[test]
    fn arbitrary_three_segment_tokens_never_verify(
        header in "[A-Za-z0-9_=-]{0,60}",
        payload in "[A-Za-z0-9_=-]{0,60}",
        signature in "[A-Za-z0-9_=-]{0,400}",
    ) {
        let token = format!("{header}.{payload}.{signature}");
        let _ = decode_header(&token);
        prop_assert!(verify(&token, ALL, KEY_A.public_key()).is_err());
    }

    #[test]
    fn padding_or_noise_in_any_segment_of_a_valid_token_is_refused(
        segment in 0usize..3,
        noise in "[=+/ \\t\\n.]{1,4}",
        at_end in any::<bool>(),
    ) {
        // Issue 17: a valid token with padding (or any character outside base64url) added to
        // one of its segments never verifies, and the error says which segment is malformed.
        let token = encode(&JwsHeader::new(Algorithm::RS256), &claims(), &KEY_A).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        if at_end {
            parts[segment].push_str(&noise);
        } else {
            parts[segment].insert_str(0, &noise);
        }
        let changed = parts.join(".");
        let result = verify(&changed, ALL, KEY_A.public_key());
        prop_assert!(
            matches!(result, Err(Error::MalformedToken(_)) | Err(Error::InvalidSignature)),
            "{changed}: {result:?}"
        );
    }

    #[test]
    fn arbitrary_header_json_gives_a_header_or_a_malformed_token(
        header in proptest::collection::btree_map(
            "(alg|typ|kid|x5t|x5t#S256|x5c|crit|[a-z]{1,5})",
            prop_oneof![
                Just(json!("RS256")),
                Just(json!("none")),
                Just(json!(null)),
                any::<i64>().prop_map(|n| json!(n)),
                ".{0,20}".prop_map(|text| json!(text)),
                proptest::collection::vec(".{0,8}", 0..3).prop_map(|list| json!(list)),
            ],
            0..6,
        ),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        // Whatever the header says, parsing answers a header or a typed error, never a panic,
        // and nothing verifies without a signature from the key.
        let header_json = serde_json::to_string(&header).unwrap();
        let token = format!("{}.{}.{}", b64(header_json.as_bytes()), b64(&payload), b64(b"sig"));
        match decode_header(&token) {
            Ok(parsed) => prop_assert!(header.contains_key("alg") && header["alg"].is_string(), "{parsed:?}"),
            Err(error) => prop_assert!(matches!(error, Error::MalformedToken(_)), "{error:?}"),
        }
        prop_assert!(verify(&token, ALL, KEY_A.public_key()).is_err());
    }

    #[test]
    fn arbitrary_signatures_under_a_valid_header_never_verify(
        signature in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let token = format!("{}.e30.{}", b64(br#"{"alg":"PS256"}"#), b64(&signature));
        prop_assert!(matches!(
            verify(&token, ALL, KEY_A.public_key()),
            Err(Error::InvalidSignature)
        ));
    }
}

fn validation(alg: jsonwebtoken::Algorithm) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation
}

/// The RFC 8017 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`, which is what
/// `jsonwebtoken`'s aws-lc backend wants.
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    let (info, _) = der_element(pkcs8, 0x30);
    let (_version, rest) = der_element(info, 0x02);
    let (_algorithm, rest) = der_element(rest, 0x30);
    let (private_key, _) = der_element(rest, 0x04);
    private_key.to_vec()
}

/// Splits one DER element with `tag` off the front of `input`: (contents, rest).
fn der_element(input: &[u8], tag: u8) -> (&[u8], &[u8]) {
    assert_eq!(input[0], tag);
    let (len, header_len) = match input[1] {
        short if short < 0x80 => (usize::from(short), 2),
        0x81 => (usize::from(input[2]), 3),
        0x82 => (usize::from(u16::from_be_bytes([input[2], input[3]])), 4),
        other => panic!("unexpected length byte {other:#x}"),
    };
    input[header_len..].split_at(len)
}
