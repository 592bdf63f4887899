//! Webhook signatures: HMAC-SHA256 of the exact raw body bytes under the webhook secret,
//! compared in constant time with `X-Hub-Signature-256: sha256=<64 hex digits>`. The legacy
//! SHA-1 `X-Hub-Signature` is never accepted. Also the constant-time bearer-token check of the
//! CI events path.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::error::{GithubReceiverError, Result};

/// The header GitHub signs deliveries with.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Checks delivery signatures under one secret. Keyed once: each check clones the keyed state.
#[derive(Clone)]
pub struct SignatureVerifier {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignatureVerifier { .. }")
    }
}

impl SignatureVerifier {
    /// A verifier for `secret` (its UTF-8 bytes are the HMAC key, as GitHub uses them).
    pub fn new(secret: &str) -> SignatureVerifier {
        SignatureVerifier {
            // HMAC takes keys of any length; the `Err` arm cannot happen, but is not unwrapped.
            mac: Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .unwrap_or_else(|_| keyed_fallback()),
        }
    }

    /// Checks `header` (the `X-Hub-Signature-256` value, if any) against `body`.
    pub fn verify(&self, header: Option<&[u8]>, body: &[u8]) -> Result<()> {
        let expected = Self::expected(header)?;
        self.verify_expected(&expected, body)
    }

    /// The signature a request claims (`X-Hub-Signature-256`), checked for presence and form
    /// only: cheap, so a request without a well-formed signature is refused before its body is
    /// read.
    pub fn expected(header: Option<&[u8]>) -> Result<[u8; 32]> {
        let header = header.ok_or(GithubReceiverError::MissingSignature)?;
        parse_signature(header).ok_or(GithubReceiverError::MalformedSignature)
    }

    /// Checks a claimed signature (from [`SignatureVerifier::expected`]) against `body`, in
    /// constant time.
    pub fn verify_expected(&self, expected: &[u8; 32], body: &[u8]) -> Result<()> {
        let mut mac = self.mac.clone();
        mac.update(body);
        mac.verify_slice(expected)
            .map_err(|_| GithubReceiverError::BadSignature)
    }
}

fn keyed_fallback() -> Hmac<Sha256> {
    // Unreachable in practice (HMAC accepts every key length); a 32-byte key always works.
    <Hmac<Sha256> as KeyInit>::new(&Default::default())
}

/// `sha256=` + 64 hex digits (either case) → the 32 signature bytes.
fn parse_signature(header: &[u8]) -> Option<[u8; 32]> {
    let hex = header.strip_prefix(b"sha256=")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The `X-Hub-Signature-256` value GitHub would send for `body` under `secret`
/// (`sha256=<lowercase hex>`): for tests, benchmarks and senders that replay deliveries.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = SignatureVerifier::new(secret).mac;
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.iter() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Checks `Authorization: Bearer <token>` in constant time (both sides are hashed first, so
/// neither the content nor the length of the token leaks through timing).
#[derive(Clone)]
pub struct BearerToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken { .. }")
    }
}

impl BearerToken {
    /// The expected token.
    pub fn new(token: &str) -> BearerToken {
        BearerToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Checks an `Authorization` header value.
    pub fn verify(&self, header: Option<&[u8]>) -> Result<()> {
        let header = header.ok_or(GithubReceiverError::BadToken)?;
        let token = strip_bearer(header).ok_or(GithubReceiverError::BadToken)?;
        let got: [u8; 32] = Sha256::digest(token).into();
        let diff = got
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(())
        } else {
            Err(GithubReceiverError::BadToken)
        }
    }
}

fn strip_bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}
