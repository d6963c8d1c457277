//! The reporter's personal data at rest (诉求人): AES-256-GCM with a fresh random nonce per
//! write, the case id as associated data (a sealed reporter cannot be moved to another
//! case), and a keyed digest for the trail, which must show that the reporter changed
//! without showing who they are.

use aes_gcm::{
    Aes256Gcm, KeyInit as _, Nonce,
    aead::{Aead as _, AeadCore as _, OsRng, Payload},
};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use minhu_trail::hex;

use crate::domain::model::Reporter;

/// The development key: for the demo and tests only, never for a real district.
pub const DEV_REPORTER_KEY: [u8; 32] = *b"minhu-dev-reporter-key-not-prod!";

/// Why sealed data could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("reporter data cannot be decrypted (wrong key or corrupted)")]
pub struct OpenError;

/// Seals and opens reporter records.
#[derive(Clone)]
pub struct ReporterCipher {
    key: [u8; 32],
}

impl std::fmt::Debug for ReporterCipher {
    // The key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReporterCipher(<key>)")
    }
}

impl ReporterCipher {
    /// A cipher with `key`.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn aead(&self) -> Aes256Gcm {
        Aes256Gcm::new(&aes_gcm::Key::<Aes256Gcm>::from(self.key))
    }

    /// nonce (12 bytes) ‖ ciphertext+tag of the reporter's JSON, bound to `case_id`.
    pub fn seal(&self, case_id: Uuid, reporter: &Reporter) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let plain = serde_json::to_vec(reporter).unwrap_or_default();
        // Encryption with a valid key and in-memory buffers cannot fail.
        let sealed = self.aead().encrypt(&nonce, Payload { msg: &plain, aad: case_id.as_bytes() }).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// The reporter sealed by [`ReporterCipher::seal`] for `case_id`.
    pub fn open(&self, case_id: Uuid, sealed: &[u8]) -> Result<Reporter, OpenError> {
        if sealed.len() < 12 {
            return Err(OpenError);
        }
        let (nonce, body) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| OpenError)?;
        let plain = self
            .aead()
            .decrypt(&Nonce::from(nonce), Payload { msg: body, aad: case_id.as_bytes() })
            .map_err(|_| OpenError)?;
        serde_json::from_slice(&plain).map_err(|_| OpenError)
    }

    fn seal_bytes(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self.aead().encrypt(&nonce, Payload { msg: plain, aad }).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    fn open_bytes(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, body) = sealed.split_at_checked(12)?;
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        self.aead().decrypt(&Nonce::from(nonce), Payload { msg: body, aad }).ok()
    }

    /// A keyed digest of the reporter on `case_id`'s trail: within a case equal records give
    /// equal digests (a correction shows as a change); across cases the same reporter gives
    /// different digests, so trails cannot be joined to link one person's appeals; without
    /// the key a phone number cannot be guessed from it.
    pub fn digest(&self, case_id: Uuid, reporter: &Reporter) -> String {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update([0]);
        h.update(case_id.as_bytes());
        h.update(serde_json::to_vec(reporter).unwrap_or_default());
        hex(&h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter() -> Reporter {
        Reporter { name: "张三".into(), phone: "13812341234".into(), id_number: String::new(), confidential: true }
    }

    #[test]
    fn a_sealed_reporter_opens_only_for_its_case_and_key() {
        let cipher = ReporterCipher::new(DEV_REPORTER_KEY);
        let case = Uuid::new_v4();
        let sealed = cipher.seal(case, &reporter());
        assert!(!String::from_utf8_lossy(&sealed).contains("1381234"));
        assert_eq!(cipher.open(case, &sealed).unwrap(), reporter());
        assert!(cipher.open(Uuid::new_v4(), &sealed).is_err());
        assert!(ReporterCipher::new([7; 32]).open(case, &sealed).is_err());
        assert!(cipher.open(case, &sealed[..5]).is_err());
        assert_eq!(cipher.digest(case, &reporter()), cipher.digest(case, &reporter()));
        assert_ne!(cipher.digest(case, &reporter()), cipher.digest(Uuid::new_v4(), &reporter()), "not linkable");
    }
}

/// request_id first results (the street's unmasked view of a case) are sealed with the same
/// key, bound to their record.
impl minhu_store::Seal for ReporterCipher {
    fn seal(&self, context: &[u8], plain: &[u8]) -> Vec<u8> {
        self.seal_bytes(context, plain)
    }

    fn open(&self, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        self.open_bytes(context, sealed)
    }
}
