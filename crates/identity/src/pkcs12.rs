//! A small PKCS#12 (`.pfx`, `.p12`) reader for [`EnvironmentCredential`](crate::EnvironmentCredential):
//! the certificates and the PKCS#8 private key of a file as OpenSSL 3 writes it by default.
//!
//! Supported (RFC 7292, RFC 8018): a password-integrity MAC (HMAC-SHA-256 or HMAC-SHA-1 keyed
//! by the PKCS#12 KDF of Appendix B), `data` and `encryptedData` contents, PBES2 with PBKDF2
//! (HMAC-SHA-1 or HMAC-SHA-256) and AES-128/192/256-CBC, and `certBag`, `keyBag` and
//! `pkcs8ShroudedKeyBag` bags. The legacy PKCS#12 PBE ciphers (3DES, RC2) and PBES1 are refused
//! with a hint saying how to re-export the file. Only DER is read: no BER indefinite lengths.
//!
//! A hand-written reader rather than a crate: the pure-Rust PKCS#12 crates bring a second
//! cryptography stack, and this crate uses aws-lc-rs alone (see `environment`). The password
//! and the decrypted key never reach `Debug` output or error messages.

use std::fmt;
use std::num::NonZeroU32;

use aws_lc_rs::cipher::{
    AES_128, AES_128_KEY_LEN, AES_192, AES_192_KEY_LEN, AES_256, AES_256_KEY_LEN,
    Algorithm as CipherAlgorithm, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::{digest, hmac, pbkdf2};

use crate::{Error, Result};

/// The most iterations a KDF may ask for. OpenSSL writes 2048 and Windows 2000; a bound keeps
/// a damaged file from spinning the CPU for minutes.
const ITERATIONS_MAX: u64 = 10_000_000;

/// The most certificate and key bags a file may hold: real files hold a handful.
const BAGS_MAX: usize = 64;

/// What a PKCS#12 file holds: its certificates in file order and its one private key.
pub(crate) struct Pkcs12 {
    /// DER X.509 certificates, in file order.
    pub(crate) certificates_der: Vec<Vec<u8>>,
    /// The private key as PKCS#8 `PrivateKeyInfo` DER. Secret.
    pub(crate) private_key_pkcs8_der: Vec<u8>,
}

impl fmt::Debug for Pkcs12 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs12")
            .field("certificates", &self.certificates_der.len())
            .field("private_key", &"[redacted]")
            .finish()
    }
}

/// The message of every failure a wrong password causes, so a caller cannot tell a wrong
/// password from a tampered file.
const WRONG_PASSWORD: &str = "PKCS#12 file: wrong password or damaged file";

/// Reads `pfx` with `password` (the empty string when none was given).
///
/// Fails with [`Error::InvalidConfig`] when the file is malformed, the MAC does not match
/// (wrong password), it uses a legacy or unknown algorithm, or it does not hold exactly one
/// private key and at least one certificate.
pub(crate) fn parse(pfx: &[u8], password: &str) -> Result<Pkcs12> {
    let mut outer = Der::new(pfx);
    let mut pfx_seq = outer.sequence()?;
    outer.end()?;
    let version = pfx_seq.read(TAG_INTEGER)?;
    if version != [3] {
        return Err(malformed("version is not 3"));
    }
    let (content_type, auth_safe) = content_info(&mut pfx_seq)?;
    if content_type != OID_DATA {
        return Err(unsupported("authSafe content type (public-key integrity)", content_type));
    }
    let auth_safe = Der::new(auth_safe).read_only(TAG_OCTET_STRING)?;
    if !pfx_seq.is_empty() {
        verify_mac(pfx_seq.sequence()?, auth_safe, password)?;
    }
    pfx_seq.end()?;

    let mut bags = Bags::default();
    let mut contents = Der::new(auth_safe).sequence_only()?;
    while !contents.is_empty() {
        let (content_type, content) = content_info(&mut contents)?;
        if content_type == OID_DATA {
            let safe_contents = Der::new(content).read_only(TAG_OCTET_STRING)?;
            bags.read(safe_contents, password)?;
        } else if content_type == OID_ENCRYPTED_DATA {
            let safe_contents = decrypt_encrypted_data(content, password)?;
            bags.read(&safe_contents, password)?;
        } else {
            return Err(unsupported("content type (public-key privacy)", content_type));
        }
    }
    bags.finish()
}

/// Decrypts a PKCS#8 `EncryptedPrivateKeyInfo` (PBES2) into `PrivateKeyInfo` DER.
pub(crate) fn decrypt_private_key(encrypted_der: &[u8], password: &str) -> Result<Vec<u8>> {
    let mut info = Der::new(encrypted_der).sequence_only()?;
    let algorithm = info.sequence()?;
    let ciphertext = info.read(TAG_OCTET_STRING)?;
    info.end()?;
    decrypt(algorithm, ciphertext, password)
}

#[derive(Default)]
struct Bags {
    certificates_der: Vec<Vec<u8>>,
    private_keys_der: Vec<Vec<u8>>,
}

impl Bags {
    fn read(&mut self, safe_contents: &[u8], password: &str) -> Result<()> {
        let mut bags = Der::new(safe_contents).sequence_only()?;
        while !bags.is_empty() {
            if self.certificates_der.len() + self.private_keys_der.len() >= BAGS_MAX {
                return Err(malformed("too many bags"));
            }
            let mut bag = bags.sequence()?;
            let bag_id = bag.read(TAG_OID)?;
            let value = Der::new(bag.read(TAG_CONTEXT_0)?).one()?;
            // Bag attributes (friendly name, local key id) are ignored: the key and its
            // certificate are matched by public key instead.
            if bag_id == OID_CERT_BAG {
                let mut cert_bag = Der::new(value).sequence_only()?;
                let cert_type = cert_bag.read(TAG_OID)?;
                let cert = Der::new(cert_bag.read(TAG_CONTEXT_0)?).read_only(TAG_OCTET_STRING)?;
                cert_bag.end()?;
                if cert_type == OID_X509_CERTIFICATE {
                    self.certificates_der.push(cert.to_vec());
                }
            } else if bag_id == OID_KEY_BAG {
                self.private_keys_der.push(value.to_vec());
            } else if bag_id == OID_PKCS8_SHROUDED_KEY_BAG {
                self.private_keys_der.push(decrypt_private_key(value, password)?);
            }
            // Other bags (CRLs, secrets, nested safe contents) carry nothing a credential uses.
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Pkcs12> {
        if self.private_keys_der.len() > 1 {
            return Err(Error::InvalidConfig(
                "PKCS#12 file holds more than one private key".to_owned(),
            ));
        }
        let private_key_pkcs8_der = self
            .private_keys_der
            .pop()
            .ok_or_else(|| Error::InvalidConfig("PKCS#12 file holds no private key".to_owned()))?;
        if self.certificates_der.is_empty() {
            return Err(Error::InvalidConfig("PKCS#12 file holds no certificate".to_owned()));
        }
        Ok(Pkcs12 { certificates_der: self.certificates_der, private_key_pkcs8_der })
    }
}

/// Reads a `ContentInfo`: its type and the value inside `[0] EXPLICIT`.
fn content_info<'a>(der: &mut Der<'a>) -> Result<(&'a [u8], &'a [u8])> {
    let mut info = der.sequence()?;
    let content_type = info.read(TAG_OID)?;
    let content = Der::new(info.read(TAG_CONTEXT_0)?).one()?;
    info.end()?;
    Ok((content_type, content))
}

/// Checks `macData` over the authenticated safe: the PKCS#12 KDF (ID 3) of the BMPString
/// password keys an HMAC whose digest must match.
fn verify_mac(mut mac_data: Der<'_>, auth_safe: &[u8], password: &str) -> Result<()> {
    let mut digest_info = mac_data.sequence()?;
    let mut algorithm = digest_info.sequence()?;
    let digest_oid = algorithm.read(TAG_OID)?;
    let expected = digest_info.read(TAG_OCTET_STRING)?;
    digest_info.end()?;
    let salt = mac_data.read(TAG_OCTET_STRING)?;
    let iterations = if mac_data.is_empty() {
        NonZeroU32::MIN
    } else {
        iterations(mac_data.read(TAG_INTEGER)?)?
    };
    mac_data.end()?;
    let (digest_algorithm, hmac_algorithm) = if digest_oid == OID_SHA256 {
        (&digest::SHA256, hmac::HMAC_SHA256)
    } else if digest_oid == OID_SHA1 {
        (&digest::SHA1_FOR_LEGACY_USE_ONLY, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY)
    } else {
        return Err(unsupported("MAC digest", digest_oid));
    };
    let check = |password_bmp: &[u8]| {
        let key = pkcs12_kdf(
            digest_algorithm,
            password_bmp,
            salt,
            PKCS12_KDF_ID_MAC,
            iterations,
            digest_algorithm.output_len(),
        );
        hmac::verify(&hmac::Key::new(hmac_algorithm, &key), auth_safe, expected).is_ok()
    };
    // An empty password is ambiguous: OpenSSL tries both the empty BMPString (two zero
    // bytes) and no bytes at all, since writers disagree.
    if check(&bmp_string(password)) || (password.is_empty() && check(&[])) {
        Ok(())
    } else {
        Err(Error::InvalidConfig(WRONG_PASSWORD.to_owned()))
    }
}

/// Decrypts an `EncryptedData`'s content into the SafeContents DER it hides.
fn decrypt_encrypted_data(encrypted_data: &[u8], password: &str) -> Result<Vec<u8>> {
    let mut data = Der::new(encrypted_data).sequence_only()?;
    let _version = data.read(TAG_INTEGER)?;
    let mut info = data.sequence()?;
    data.end()?;
    let content_type = info.read(TAG_OID)?;
    if content_type != OID_DATA {
        return Err(unsupported("encrypted content type", content_type));
    }
    let algorithm = info.sequence()?;
    // `[0] IMPLICIT OCTET STRING`: primitive in DER, constructed (chunks) in BER.
    let (tag, value) = info.any()?;
    info.end()?;
    let ciphertext = match tag {
        TAG_CONTEXT_0_PRIMITIVE => value.to_vec(),
        TAG_CONTEXT_0 => {
            let mut chunks = Der::new(value);
            let mut ciphertext = Vec::new();
            while !chunks.is_empty() {
                ciphertext.extend_from_slice(chunks.read(TAG_OCTET_STRING)?);
            }
            ciphertext
        }
        _ => return Err(malformed("encrypted content is not [0]")),
    };
    decrypt(algorithm, &ciphertext, password)
}

/// Decrypts `ciphertext` with the PBES2 scheme `algorithm` names, refusing legacy schemes.
fn decrypt(mut algorithm: Der<'_>, ciphertext: &[u8], password: &str) -> Result<Vec<u8>> {
    let oid = algorithm.read(TAG_OID)?;
    if is_legacy_pbe(oid) {
        return Err(Error::InvalidConfig(format!(
            "PKCS#12 file uses a legacy cipher ({}); re-export it with modern algorithms: `openssl pkcs12 -legacy -in old.pfx -nodes | openssl pkcs12 -export -out new.pfx`",
            oid_name(oid)
        )));
    }
    if oid != OID_PBES2 {
        return Err(unsupported("encryption scheme", oid));
    }
    let mut params = algorithm.sequence()?;
    algorithm.end()?;

    let mut kdf = params.sequence()?;
    let kdf_oid = kdf.read(TAG_OID)?;
    if kdf_oid != OID_PBKDF2 {
        return Err(unsupported("key derivation function", kdf_oid));
    }
    let mut kdf_params = kdf.sequence()?;
    kdf.end()?;
    let salt = kdf_params.read(TAG_OCTET_STRING)?;
    let iterations = iterations(kdf_params.read(TAG_INTEGER)?)?;
    let key_len = kdf_params.read_optional(TAG_INTEGER)?.map(small_integer).transpose()?;
    let prf = match kdf_params.read_optional(TAG_SEQUENCE)? {
        None => pbkdf2::PBKDF2_HMAC_SHA1,
        Some(prf) => {
            let mut prf = Der::new(prf);
            let prf_oid = prf.read(TAG_OID)?;
            // Parameters, when present, are NULL.
            let _ = prf.read_optional(TAG_NULL)?;
            prf.end()?;
            if prf_oid == OID_HMAC_SHA256 {
                pbkdf2::PBKDF2_HMAC_SHA256
            } else if prf_oid == OID_HMAC_SHA1 {
                pbkdf2::PBKDF2_HMAC_SHA1
            } else {
                return Err(unsupported("PBKDF2 pseudo-random function", prf_oid));
            }
        }
    };
    kdf_params.end()?;

    let mut scheme = params.sequence()?;
    params.end()?;
    let cipher_oid = scheme.read(TAG_OID)?;
    let (cipher, cipher_key_len): (&'static CipherAlgorithm, usize) =
        if cipher_oid == OID_AES_256_CBC {
            (&AES_256, AES_256_KEY_LEN)
        } else if cipher_oid == OID_AES_192_CBC {
            (&AES_192, AES_192_KEY_LEN)
        } else if cipher_oid == OID_AES_128_CBC {
            (&AES_128, AES_128_KEY_LEN)
        } else {
            return Err(unsupported("cipher", cipher_oid));
        };
    let iv: [u8; 16] = scheme
        .read(TAG_OCTET_STRING)?
        .try_into()
        .map_err(|_| malformed("AES IV is not 16 bytes"))?;
    scheme.end()?;
    if key_len.is_some_and(|len| len != cipher_key_len) {
        return Err(malformed("PBKDF2 key length does not match the cipher"));
    }

    let mut key = vec![0; cipher_key_len];
    pbkdf2::derive(prf, iterations, salt, password.as_bytes(), &mut key);
    let key = UnboundCipherKey::new(cipher, &key).map_err(|_| malformed("bad AES key"))?;
    let key = PaddedBlockDecryptingKey::cbc_pkcs7(key).map_err(|_| malformed("bad AES key"))?;
    let mut buffer = ciphertext.to_vec();
    let plaintext_len = key
        .decrypt(&mut buffer, DecryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| Error::InvalidConfig(WRONG_PASSWORD.to_owned()))?
        .len();
    buffer.truncate(plaintext_len);
    Ok(buffer)
}

const PKCS12_KDF_ID_MAC: u8 = 3;

/// The PKCS#12 key derivation of RFC 7292 Appendix B.2, `n` bytes long.
fn pkcs12_kdf(
    algorithm: &'static digest::Algorithm,
    password_bmp: &[u8],
    salt: &[u8],
    id: u8,
    iterations: NonZeroU32,
    n: usize,
) -> Vec<u8> {
    let u = algorithm.output_len();
    let v = algorithm.block_len();
    let repeat_to_blocks = |input: &[u8]| -> Vec<u8> {
        let len = input.len().div_ceil(v) * v;
        input.iter().copied().cycle().take(len).collect()
    };
    let d = vec![id; v];
    let mut i = repeat_to_blocks(salt);
    i.extend(repeat_to_blocks(password_bmp));
    let mut output = Vec::with_capacity(n.div_ceil(u) * u);
    while output.len() < n {
        let mut context = digest::Context::new(algorithm);
        context.update(&d);
        context.update(&i);
        let mut a = context.finish();
        for _ in 1..iterations.get() {
            a = digest::digest(algorithm, a.as_ref());
        }
        output.extend_from_slice(a.as_ref());
        if output.len() >= n {
            break;
        }
        // I_j = (I_j + B + 1) mod 2^(8v) for every v-byte block of I.
        let b: Vec<u8> = a.as_ref().iter().copied().cycle().take(v).collect();
        for block in i.chunks_mut(v) {
            let mut carry = 1u16;
            for (byte, b_byte) in block.iter_mut().zip(&b).rev() {
                let sum = u16::from(*byte) + u16::from(*b_byte) + carry;
                *byte = sum as u8;
                carry = sum >> 8;
            }
        }
    }
    output.truncate(n);
    output
}

/// The password as a BMPString with its terminating NUL, as the PKCS#12 KDF takes it.
fn bmp_string(password: &str) -> Vec<u8> {
    password.encode_utf16().chain([0]).flat_map(u16::to_be_bytes).collect()
}

fn iterations(integer: &[u8]) -> Result<NonZeroU32> {
    let value = small_integer(integer)?;
    u32::try_from(value)
        .ok()
        .filter(|&count| u64::from(count) <= ITERATIONS_MAX)
        .and_then(NonZeroU32::new)
        .ok_or_else(|| malformed("iteration count is zero or too large"))
}

/// A non-negative INTEGER that fits a `usize`.
fn small_integer(integer: &[u8]) -> Result<usize> {
    if integer.is_empty() || integer[0] & 0x80 != 0 {
        return Err(malformed("negative or empty INTEGER"));
    }
    let integer = integer.strip_prefix(&[0]).unwrap_or(integer);
    if integer.len() > 4 {
        return Err(malformed("INTEGER too large"));
    }
    Ok(integer.iter().fold(0, |value, &byte| (value << 8) | usize::from(byte)))
}

fn is_legacy_pbe(oid: &[u8]) -> bool {
    // pkcs-12PbeIds (1.2.840.113549.1.12.1.*) and PBES1 (1.2.840.113549.1.5.1-11).
    let under = |arc: &[u8]| oid.len() == arc.len() + 1 && oid.starts_with(arc);
    under(OID_PKCS12_PBE_IDS) || (under(OID_PKCS5) && oid[OID_PKCS5.len()] <= 11)
}

fn malformed(what: &str) -> Error {
    Error::InvalidConfig(format!("PKCS#12 file is malformed: {what}"))
}

fn unsupported(what: &str, oid: &[u8]) -> Error {
    Error::InvalidConfig(format!("PKCS#12 file uses an unsupported {what}: {}", oid_name(oid)))
}

/// Dotted form of an OID's content bytes, for messages.
fn oid_name(oid: &[u8]) -> String {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for &byte in oid {
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = value.min(80) / 40;
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
        if value > u64::MAX >> 8 {
            return "(malformed OID)".to_owned();
        }
    }
    arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_CONTEXT_0: u8 = 0xa0;
const TAG_CONTEXT_0_PRIMITIVE: u8 = 0x80;

const OID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const OID_ENCRYPTED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06];
const OID_KEY_BAG: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x01];
const OID_PKCS8_SHROUDED_KEY_BAG: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02];
const OID_CERT_BAG: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x03];
const OID_X509_CERTIFICATE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x16, 0x01];
const OID_PKCS12_PBE_IDS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01];
const OID_PKCS5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05];
const OID_PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
const OID_PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
const OID_HMAC_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x07];
const OID_HMAC_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09];
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_AES_128_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02];
const OID_AES_192_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x16];
const OID_AES_256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];

/// A cursor over DER: tag, length, value, one element at a time. Single-byte tags and
/// definite lengths only, which is all DER needs for these structures.
struct Der<'a> {
    input: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(input: &'a [u8]) -> Der<'a> {
        Der { input }
    }

    fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// The next element's tag and value.
    fn any(&mut self) -> Result<(u8, &'a [u8])> {
        let [tag, first, rest @ ..] = self.input else {
            return Err(malformed("truncated element"));
        };
        if tag & 0x1f == 0x1f {
            return Err(malformed("multi-byte tag"));
        }
        let (len, rest) = match *first {
            len @ 0..=0x7f => (usize::from(len), rest),
            0x80 => return Err(malformed("indefinite length (BER) is not supported")),
            long => {
                let count = usize::from(long & 0x7f);
                if count > 4 || rest.len() < count {
                    return Err(malformed("bad length"));
                }
                let (len_bytes, rest) = rest.split_at(count);
                let len =
                    len_bytes.iter().fold(0usize, |len, &byte| (len << 8) | usize::from(byte));
                (len, rest)
            }
        };
        if rest.len() < len {
            return Err(malformed("element longer than its container"));
        }
        let (value, rest) = rest.split_at(len);
        self.input = rest;
        Ok((*tag, value))
    }

    /// The next element's value, which must carry `tag`.
    fn read(&mut self, tag: u8) -> Result<&'a [u8]> {
        let (found, value) = self.any()?;
        if found != tag {
            return Err(malformed("unexpected element"));
        }
        Ok(value)
    }

    /// The next element's value if it carries `tag`; nothing is consumed otherwise.
    fn read_optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>> {
        if self.input.first() == Some(&tag) { self.read(tag).map(Some) } else { Ok(None) }
    }

    fn sequence(&mut self) -> Result<Der<'a>> {
        self.read(TAG_SEQUENCE).map(Der::new)
    }

    /// The single element `tag` that makes up all of the input.
    fn read_only(mut self, tag: u8) -> Result<&'a [u8]> {
        let value = self.read(tag)?;
        self.end()?;
        Ok(value)
    }

    /// The single SEQUENCE that makes up all of the input.
    fn sequence_only(self) -> Result<Der<'a>> {
        self.read_only(TAG_SEQUENCE).map(Der::new)
    }

    /// The whole single element (tag, length and value) that makes up all of the input.
    fn one(mut self) -> Result<&'a [u8]> {
        let whole = self.input;
        self.any()?;
        self.end()?;
        Ok(whole)
    }

    fn end(&self) -> Result<()> {
        if self.input.is_empty() { Ok(()) } else { Err(malformed("trailing data")) }
    }
}

#[cfg(test)]
mod tests;
