//! The one hash-of-name function: layers address names by a SHA3 hash of the name.

use serde::{Deserialize, Serialize};
use sha3::{Digest, Sha3_224, Sha3_256, Sha3_384, Sha3_512};
use std::fmt;
use std::str::FromStr;

/// The hash algorithm of a layer (the prototype's `dir_hash_algo`). The udp layers always
/// use MD5, as the prototype does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum HashAlgo {
    Sha3_224,
    #[default]
    Sha3_256,
    Sha3_384,
    Sha3_512,
    Md5,
}

impl HashAlgo {
    /// Length of a hash in bytes.
    pub fn hash_len(self) -> usize {
        match self {
            HashAlgo::Sha3_224 => 28,
            HashAlgo::Sha3_256 => 32,
            HashAlgo::Sha3_384 => 48,
            HashAlgo::Sha3_512 => 64,
            HashAlgo::Md5 => 16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Sha3_224 => "SHA3_224",
            HashAlgo::Sha3_256 => "SHA3_256",
            HashAlgo::Sha3_384 => "SHA3_384",
            HashAlgo::Sha3_512 => "SHA3_512",
            HashAlgo::Md5 => "MD5",
        }
    }

    /// Hash a name.
    pub fn hash(self, name: &str) -> NameHash {
        let bytes: Vec<u8> = match self {
            HashAlgo::Sha3_224 => Sha3_224::digest(name.as_bytes()).to_vec(),
            HashAlgo::Sha3_256 => Sha3_256::digest(name.as_bytes()).to_vec(),
            HashAlgo::Sha3_384 => Sha3_384::digest(name.as_bytes()).to_vec(),
            HashAlgo::Sha3_512 => Sha3_512::digest(name.as_bytes()).to_vec(),
            HashAlgo::Md5 => md5::Md5::digest(name.as_bytes()).to_vec(),
        };
        NameHash(bytes)
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hash algorithm \"{0}\" (expected SHA3_224, SHA3_256, SHA3_384, SHA3_512 or MD5)")]
pub struct UnknownHash(pub String);

impl FromStr for HashAlgo {
    type Err = UnknownHash;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "SHA3_224" => Ok(HashAlgo::Sha3_224),
            "SHA3_256" => Ok(HashAlgo::Sha3_256),
            "SHA3_384" => Ok(HashAlgo::Sha3_384),
            "SHA3_512" => Ok(HashAlgo::Sha3_512),
            "MD5" => Ok(HashAlgo::Md5),
            _ => Err(UnknownHash(s.to_string())),
        }
    }
}

/// A hashed name as layers see it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NameHash(pub Vec<u8>);

impl NameHash {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for NameHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NameHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameHash({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_sha3_256() {
        // SHA3-256("") from FIPS 202.
        assert_eq!(
            HashAlgo::Sha3_256.hash("").to_string(),
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
        );
    }

    #[test]
    fn known_vector_md5() {
        // RFC 1321: MD5("abc").
        assert_eq!(
            HashAlgo::Md5.hash("abc").to_string(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
    }

    #[test]
    fn lengths() {
        for a in [
            HashAlgo::Sha3_224,
            HashAlgo::Sha3_256,
            HashAlgo::Sha3_384,
            HashAlgo::Sha3_512,
            HashAlgo::Md5,
        ] {
            assert_eq!(a.hash("oping.server").0.len(), a.hash_len());
            assert_eq!(a.name().parse::<HashAlgo>(), Ok(a));
        }
    }
}
