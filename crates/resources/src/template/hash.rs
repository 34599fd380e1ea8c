//! The two hashes ARM templates expose as functions, written out here because the engine must
//! match Azure bit for bit and no crate offers Azure's variants:
//!
//! - `uniqueString()` is Microsoft's 64-bit MurmurHash variant (two interleaved 32-bit lanes)
//!   of the UTF-8 arguments joined with `-`, printed as 13 base-32 characters;
//! - `guid()` is a name-based version-5 UUID (RFC 4122 §4.3) in ARM's namespace
//!   `11fb06fb-712d-4ddd-98c7-e71bbd588830`, over the same joined text.
//!
//! SHA-1 is used here only to derive deterministic names, as RFC 4122 prescribes, never to
//! protect anything; that is why it lives here and not in `crypto`.

/// ARM's namespace for `guid()`, in network byte order.
const GUID_NAMESPACE: [u8; 16] = [
    0x11, 0xfb, 0x06, 0xfb, 0x71, 0x2d, 0x4d, 0xdd, 0x98, 0xc7, 0xe7, 0x1b, 0xbd, 0x58, 0x88, 0x30,
];

const BASE32_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `uniqueString(parts...)`: 13 lower-case base-32 characters.
pub(crate) fn unique_string(parts: &[&str]) -> String {
    let mut hash = murmur_hash64(parts.join("-").as_bytes());
    let mut text = String::with_capacity(13);
    for _ in 0..13 {
        text.push(char::from(BASE32_ALPHABET[(hash >> 59) as usize]));
        hash <<= 5;
    }
    text
}

/// `guid(parts...)`: a lower-case version-5 UUID.
pub(crate) fn guid(parts: &[&str]) -> String {
    uuid_v5(&GUID_NAMESPACE, parts.join("-").as_bytes())
}

/// A version-5 UUID of `name` in `namespace`, formatted `8-4-4-4-12`.
pub(crate) fn uuid_v5(namespace: &[u8; 16], name: &[u8]) -> String {
    let mut input = Vec::with_capacity(16 + name.len());
    input.extend_from_slice(namespace);
    input.extend_from_slice(name);
    let digest = sha1(&input);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Microsoft's MurmurHash64 (seed 0), as ARM's `ComputeHash.MurmurHash64` computes it.
pub(crate) fn murmur_hash64(data: &[u8]) -> u64 {
    const C1: u32 = 0x239b_961b;
    const C2: u32 = 0xab0e_9789;
    const C3: u32 = 0x85eb_ca6b;
    const C4: u32 = 0xc2b2_ae35;
    let lane = |bytes: &[u8]| -> u32 {
        bytes.iter().rev().fold(0u32, |acc, &byte| (acc << 8) | u32::from(byte))
    };
    let length = data.len();
    let (mut h1, mut h2) = (0u32, 0u32);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let k1 = lane(&chunk[..4]).wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h1 = (h1 ^ k1).rotate_left(19).wrapping_add(h2).wrapping_mul(5).wrapping_add(0x561c_cd1b);
        let k2 = lane(&chunk[4..]).wrapping_mul(C2).rotate_left(17).wrapping_mul(C1);
        h2 = (h2 ^ k2).rotate_left(13).wrapping_add(h1).wrapping_mul(5).wrapping_add(0x0bca_a747);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let first = &tail[..tail.len().min(4)];
        h1 ^= lane(first).wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        if tail.len() > 4 {
            h2 ^= lane(&tail[4..]).wrapping_mul(C2).rotate_left(17).wrapping_mul(C1);
        }
    }
    // The length is folded in as a 32-bit value, as the original does.
    let length = length as u32;
    h1 ^= length;
    h2 ^= length;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    let mix = |mut h: u32| {
        h = (h ^ (h >> 16)).wrapping_mul(C3);
        h = (h ^ (h >> 13)).wrapping_mul(C4);
        h ^ (h >> 16)
    };
    h1 = mix(h1);
    h2 = mix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (u64::from(h2) << 32) | u64::from(h1)
}

/// SHA-1 (FIPS 180-4) of `data`.
pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    let mut state: [u32; 5] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476, 0xc3d2_e1f0];
    let mut message = data.to_vec();
    let bit_length = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_length.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut words = [0u32; 80];
        for (index, word) in block.chunks_exact(4).enumerate() {
            words[index] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for index in 16..80 {
            words[index] =
                (words[index - 3] ^ words[index - 8] ^ words[index - 14] ^ words[index - 16])
                    .rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = state;
        for (index, word) in words.iter().enumerate() {
            let (f, k) = match index {
                0..=19 => ((b & c) | (!b & d), 0x5a82_7999),
                20..=39 => (b ^ c ^ d, 0x6ed9_eba1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
                _ => (b ^ c ^ d, 0xca62_c1d6),
            };
            let next = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = next;
        }
        for (slot, value) in state.iter_mut().zip([a, b, c, d, e]) {
            *slot = slot.wrapping_add(value);
        }
    }
    let mut digest = [0u8; 20];
    for (chunk, word) in digest.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    digest
}
