//! Tests for the certificate authority: issued certificates are read back with
//! [`certificate_info`] and their signatures checked against the CA key with x509-parser.

use std::sync::LazyLock;

use expect_test::{Expect, expect};

use super::*;

/// 2024-01-01T00:00:00Z.
const NOW: domain::UnixTime = domain::UnixTime::from_secs(1_704_067_200);
const DAY: i64 = 24 * 3600;

static CA: LazyLock<CertificateAuthority> =
    LazyLock::new(|| CertificateAuthority::generate("Ambient Test CA", NOW).unwrap());

/// Checks that `cert_pem` was signed by `ca`'s key and names it as issuer, then renders the
/// fields of [`certificate_info`] that do not change between runs.
#[track_caller]
fn check(ca: &CertificateAuthority, cert_pem: &str, expect: Expect) {
    let der = certificate_der(cert_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let (_, ca_cert) = x509_parser::parse_x509_certificate(ca.cert_der()).unwrap();
    cert.verify_signature(Some(ca_cert.public_key())).expect("signed by the ca");
    assert_eq!(cert.issuer(), ca_cert.subject());

    let info = certificate_info(cert_pem.as_bytes()).unwrap();
    let eku = cert.extended_key_usage().unwrap().map(|eku| eku.value);
    let actual = format!(
        "subject_cn: {:?}\nissuer_cn: {:?}\nnot_before: {}\nnot_after: {}\ndns_names: {:?}\n\
         ip_addresses: {:?}\nis_ca: {}\nserver_auth: {}\nclient_auth: {}\n",
        info.subject_cn,
        info.issuer_cn,
        info.not_before.secs() - NOW.secs(),
        info.not_after.secs() - NOW.secs(),
        info.dns_names,
        info.ip_addresses,
        info.is_ca,
        eku.is_some_and(|eku| eku.server_auth),
        eku.is_some_and(|eku| eku.client_auth),
    );
    expect.assert_eq(&actual);
}

#[test]
fn generated_ca_is_a_ten_year_self_signed_ca() {
    let (_, cert) = x509_parser::parse_x509_certificate(CA.cert_der()).unwrap();
    cert.verify_signature(None).unwrap();
    let key_usage = cert.key_usage().unwrap().unwrap().value;
    assert!(key_usage.key_cert_sign());
    let constraints = cert.basic_constraints().unwrap().unwrap().value;
    assert!(constraints.ca);
    assert_eq!(constraints.path_len_constraint, Some(0));
    let info = certificate_info(CA.cert_pem().as_bytes()).unwrap();
    assert!(info.is_ca);
    assert_eq!(info.subject_cn.as_deref(), Some("Ambient Test CA"));
    assert_eq!(info.not_before, NOW.minus_secs(domain::limits::CLOCK_LEEWAY_SECS));
    assert_eq!(info.not_after, NOW.plus_secs(CA_VALIDITY_SECS));
    assert_eq!(CA.not_after(), info.not_after);
}

#[test]
fn server_certificate_carries_sans_including_wildcards() {
    let issued = CA
        .issue_server_certificate(
            &["ambient.localhost".to_owned(), "*.vault.localhost".to_owned()],
            &["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
            NOW,
            90,
        )
        .unwrap();
    check(
        &CA,
        &issued.cert_pem,
        expect![[r#"
            subject_cn: Some("ambient.localhost")
            issuer_cn: Some("Ambient Test CA")
            not_before: -300
            not_after: 7776000
            dns_names: ["ambient.localhost", "*.vault.localhost"]
            ip_addresses: [127.0.0.1, ::1]
            is_ca: false
            server_auth: true
            client_auth: false
        "#]],
    );
    assert_eq!(issued.not_after, NOW.plus_secs(90 * DAY));
    assert!(issued.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(KeyPair::from_pem(&issued.key_pem).is_ok());
}

#[test]
fn server_certificate_for_an_ip_only_uses_it_as_common_name() {
    let issued = CA.issue_server_certificate(&[], &["10.0.0.1".parse().unwrap()], NOW, 1).unwrap();
    let info = certificate_info(issued.cert_pem.as_bytes()).unwrap();
    assert_eq!(info.subject_cn.as_deref(), Some("10.0.0.1"));
}

#[test]
fn server_certificate_with_a_long_first_name_has_no_common_name() {
    let long_name = format!("{}.localhost", "a".repeat(60));
    let issued =
        CA.issue_server_certificate(std::slice::from_ref(&long_name), &[], NOW, 1).unwrap();
    let info = certificate_info(issued.cert_pem.as_bytes()).unwrap();
    assert_eq!(info.subject_cn, None);
    assert_eq!(info.dns_names, vec![long_name]);
}

#[test]
fn bad_server_certificate_requests_are_rejected() {
    #[track_caller]
    fn rejected(dns_names: &[&str], validity_days: u32, expect: Expect) {
        let names: Vec<String> = dns_names.iter().map(|name| (*name).to_owned()).collect();
        let error = CA.issue_server_certificate(&names, &[], NOW, validity_days).unwrap_err();
        expect.assert_eq(&error.to_string());
    }
    rejected(
        &[],
        90,
        expect![
            "invalid certificate parameters: a server certificate needs a dns name or ip address"
        ],
    );
    rejected(
        &["a.localhost"],
        0,
        expect!["invalid certificate parameters: validity must be positive"],
    );
    rejected(
        &["a.localhost"],
        3651,
        expect!["invalid certificate parameters: certificate would outlive its ca"],
    );
    rejected(
        &["a..localhost"],
        1,
        expect![[r#"invalid certificate parameters: invalid dns name "a..localhost""#]],
    );
    rejected(
        &["a.*.localhost"],
        1,
        expect![[r#"invalid certificate parameters: invalid dns name "a.*.localhost""#]],
    );
    rejected(
        &["ünicode.localhost"],
        1,
        expect![[r#"invalid certificate parameters: invalid dns name "ünicode.localhost""#]],
    );
}

#[test]
fn csr_round_trip_forces_the_common_name() {
    let request = generate_csr("asked-for-name").unwrap();
    assert!(request.csr_pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    let signed = CA.sign_csr(&request.csr_pem, "host-42", NOW, 7 * DAY).unwrap();
    check(
        &CA,
        &signed.cert_pem,
        expect![[r#"
            subject_cn: Some("host-42")
            issuer_cn: Some("Ambient Test CA")
            not_before: -300
            not_after: 604800
            dns_names: []
            ip_addresses: []
            is_ca: false
            server_auth: false
            client_auth: true
        "#]],
    );
    assert_eq!(signed.not_after, NOW.plus_secs(7 * DAY));
    let info = certificate_info(signed.cert_pem.as_bytes()).unwrap();
    assert_eq!(info.sha256_fingerprint_hex, signed.sha256_fingerprint_hex);

    // The certificate is for the key the agent holds.
    let key = KeyPair::from_pem(&request.key_pem).unwrap();
    let der = certificate_der(signed.cert_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(cert.public_key().subject_public_key.data.as_ref(), key.public_key_raw());
}

#[test]
fn csr_asking_for_ca_rights_and_names_gets_neither() {
    // Goal: the CA ignores everything a CSR asks for except its key.
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = common_name_dn("Root").unwrap();
    let csr_pem = params.serialize_request(&key).unwrap().pem().unwrap();
    let signed = CA.sign_csr(&csr_pem, "host-1", NOW, DAY).unwrap();
    let info = certificate_info(signed.cert_pem.as_bytes()).unwrap();
    assert_eq!(info.subject_cn.as_deref(), Some("host-1"));
    assert!(info.dns_names.is_empty());
    assert!(!info.is_ca);
}

#[test]
fn bad_csrs_are_rejected() {
    let request = generate_csr("host").unwrap();
    #[track_caller]
    fn rejected(csr_pem: &str, validity_secs: i64, expect: Expect) {
        expect
            .assert_eq(&CA.sign_csr(csr_pem, "host", NOW, validity_secs).unwrap_err().to_string());
    }
    rejected("junk", DAY, expect!["invalid pem: no well-formed pem block"]);
    rejected(
        CA.cert_pem(),
        DAY,
        expect!["invalid pem: expected CERTIFICATE REQUEST, found CERTIFICATE"],
    );
    rejected(
        &request.csr_pem,
        0,
        expect!["invalid certificate parameters: validity must be positive"],
    );

    // Flip a bit inside the signed part: the CSR's self-signature no longer verifies.
    let mut der = pem_decode(&request.csr_pem, &["CERTIFICATE REQUEST"]).unwrap();
    let index = der.len() / 3;
    der[index] ^= 1;
    let tampered = pem_encode("CERTIFICATE REQUEST", &der);
    let error = CA.sign_csr(&tampered, "host", NOW, DAY).unwrap_err();
    assert!(matches!(error, Error::InvalidCsr(_)), "{error}");
}

#[test]
fn ca_survives_a_pem_round_trip() {
    let again = CertificateAuthority::from_pem(CA.cert_pem(), &CA.key_pem()).unwrap();
    assert_eq!(again.cert_der(), CA.cert_der());
    assert_eq!(again.not_after(), CA.not_after());
    let issued = again.issue_server_certificate(&["a.localhost".to_owned()], &[], NOW, 1).unwrap();
    // Issued by the reloaded CA, verified against the original: same name, same key.
    check(
        &CA,
        &issued.cert_pem,
        expect![[r#"
            subject_cn: Some("a.localhost")
            issuer_cn: Some("Ambient Test CA")
            not_before: -300
            not_after: 86400
            dns_names: ["a.localhost"]
            ip_addresses: []
            is_ca: false
            server_auth: true
            client_auth: false
        "#]],
    );
    let der = certificate_der(issued.cert_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(cert.extensions().iter().any(|ext| matches!(
        ext.parsed_extension(),
        x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(_)
    )));
}

#[test]
fn ca_from_mismatched_or_non_ca_pem_is_rejected() {
    let other = CertificateAuthority::generate("Other", NOW).unwrap();
    expect!["invalid certificate: ca key does not match the certificate"].assert_eq(
        &CertificateAuthority::from_pem(CA.cert_pem(), &other.key_pem()).unwrap_err().to_string(),
    );
    let leaf = CA.issue_server_certificate(&["a.localhost".to_owned()], &[], NOW, 1).unwrap();
    expect!["invalid certificate: not a ca certificate"].assert_eq(
        &CertificateAuthority::from_pem(&leaf.cert_pem, &leaf.key_pem).unwrap_err().to_string(),
    );
    expect!["invalid key: ca key is not a pem private key"]
        .assert_eq(&CertificateAuthority::from_pem(CA.cert_pem(), "junk").unwrap_err().to_string());
}

#[test]
fn self_signed_client_certificate_has_a_pkcs8_rsa_key() {
    let credential = generate_self_signed_client_certificate("my-app", NOW, 365).unwrap();
    assert!(credential.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(credential.key_pem.ends_with("-----END PRIVATE KEY-----\n"));
    assert!(credential.key_pem.lines().all(|line| line.len() <= 64));
    let key_der = pem_decode(&credential.key_pem, &["PRIVATE KEY"]).unwrap();
    let key = RsaSigningKey::from_pkcs8_der(&key_der).unwrap();
    assert_eq!(key.public_key().modulus_bits(), 2048);

    let der = certificate_der(credential.cert_pem.as_bytes()).unwrap();
    assert_eq!(&jws::RsaPublicKey::from_certificate_der(&der).unwrap(), key.public_key());
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.verify_signature(None).unwrap();
    let info = certificate_info(&der).unwrap();
    assert_eq!(info.subject_cn.as_deref(), Some("my-app"));
    assert_eq!(info.not_after, NOW.plus_secs(365 * DAY));
    assert_eq!(info.not_before, NOW.minus_secs(domain::limits::CLOCK_LEEWAY_SECS));
}

#[test]
fn certificate_info_accepts_pem_and_der_and_rejects_junk() {
    let from_pem = certificate_info(CA.cert_pem().as_bytes()).unwrap();
    let from_der = certificate_info(CA.cert_der()).unwrap();
    assert_eq!(from_pem, from_der);
    assert_eq!(from_pem.sha256_fingerprint_hex, hex(&hash::sha256(CA.cert_der())));
    assert_eq!(from_pem.sha1_thumbprint_b64url, jws::x5t_sha1(CA.cert_der()));
    assert_eq!(from_pem.sha256_thumbprint_b64url, jws::x5t_sha256(CA.cert_der()));
    assert!(matches!(certificate_info(b"junk"), Err(Error::InvalidCertificate(_))));
    let mut trailing = CA.cert_der().to_vec();
    trailing.push(0);
    expect!["invalid certificate: trailing data after certificate"]
        .assert_eq(&certificate_info(&trailing).unwrap_err().to_string());
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let issued = CA.issue_server_certificate(&["a.localhost".to_owned()], &[], NOW, 1).unwrap();
    let debug = format!("{issued:?} {:?} {:?}", *CA, generate_csr("x").unwrap());
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    assert!(debug.contains("[redacted]"));
}

#[test]
fn pem_encoding_wraps_at_64_columns() {
    let pem = pem_encode("TEST", &[0xab; 100]);
    expect![[r#"
        -----BEGIN TEST-----
        q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6ur
        q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6ur
        q6urqw==
        -----END TEST-----
    "#]]
    .assert_eq(&pem);
    assert_eq!(pem_decode(&pem, &["TEST"]).unwrap(), vec![0xab; 100]);
}
