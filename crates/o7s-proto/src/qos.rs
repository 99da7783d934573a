//! QoS specifications and the named cubes of the prototype (`include/ouroboros/qos.h`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Default peer timeout in milliseconds (the prototype's `DEFAULT_PEER_TIMEOUT`).
pub const DEFAULT_PEER_TIMEOUT_MS: u32 = 120_000;

/// What an application asks of a flow. Field meanings and units follow the prototype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QosSpec {
    /// Maximum one-way delay in ms.
    pub delay: u32,
    /// Bandwidth in bits/s.
    pub bandwidth: u64,
    /// Class of nines.
    pub availability: u8,
    /// 0 asks for loss-free delivery (retransmission).
    pub loss: u32,
    /// Bit errors per billion bits.
    pub ber: u32,
    /// 1 asks for in-order delivery (enables FRCT).
    pub in_order: u8,
    /// Largest gap in ms an in-order flow waits before skipping.
    pub max_gap: u32,
    /// Peer timeout in ms, 0 = no timeout.
    pub timeout: u32,
}

/// The named QoS cubes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QosCube {
    Raw,
    Best,
    Voice,
    Video,
    Data,
}

impl QosCube {
    pub const ALL: [QosCube; 5] = [
        QosCube::Raw,
        QosCube::Best,
        QosCube::Voice,
        QosCube::Video,
        QosCube::Data,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QosCube::Raw => "raw",
            QosCube::Best => "best",
            QosCube::Voice => "voice",
            QosCube::Video => "video",
            QosCube::Data => "data",
        }
    }

    pub fn spec(self) -> QosSpec {
        match self {
            QosCube::Raw => QosSpec::RAW,
            QosCube::Best => QosSpec::BEST_EFFORT,
            QosCube::Voice => QosSpec::VOICE,
            QosCube::Video => QosSpec::VIDEO,
            QosCube::Data => QosSpec::DATA,
        }
    }
}

impl fmt::Display for QosCube {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an unknown QoS cube name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown QoS cube \"{0}\" (expected one of: raw, best, voice, video, data)")]
pub struct UnknownCube(pub String);

impl FromStr for QosCube {
    type Err = UnknownCube;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "raw" => Ok(QosCube::Raw),
            "best" | "best-effort" | "be" => Ok(QosCube::Best),
            "voice" => Ok(QosCube::Voice),
            "video" => Ok(QosCube::Video),
            "data" | "reliable" => Ok(QosCube::Data),
            other => Err(UnknownCube(other.to_string())),
        }
    }
}

impl QosSpec {
    pub const RAW: QosSpec = QosSpec {
        delay: u32::MAX,
        bandwidth: 0,
        availability: 0,
        loss: 1,
        ber: 1,
        in_order: 0,
        max_gap: u32::MAX,
        timeout: DEFAULT_PEER_TIMEOUT_MS,
    };
    pub const RAW_NO_ERRORS: QosSpec = QosSpec {
        ber: 0,
        ..QosSpec::RAW
    };
    pub const BEST_EFFORT: QosSpec = QosSpec {
        delay: u32::MAX,
        bandwidth: 0,
        availability: 0,
        loss: 1,
        ber: 0,
        in_order: 1,
        max_gap: u32::MAX,
        timeout: DEFAULT_PEER_TIMEOUT_MS,
    };
    pub const VIDEO: QosSpec = QosSpec {
        delay: 100,
        bandwidth: u64::MAX,
        availability: 3,
        loss: 1,
        ber: 0,
        in_order: 1,
        max_gap: 100,
        timeout: DEFAULT_PEER_TIMEOUT_MS,
    };
    pub const VOICE: QosSpec = QosSpec {
        delay: 50,
        bandwidth: 100_000,
        availability: 5,
        loss: 1,
        ber: 0,
        in_order: 1,
        max_gap: 50,
        timeout: DEFAULT_PEER_TIMEOUT_MS,
    };
    pub const DATA: QosSpec = QosSpec {
        delay: 1000,
        bandwidth: 0,
        availability: 0,
        loss: 0,
        ber: 0,
        in_order: 1,
        max_gap: 2000,
        timeout: DEFAULT_PEER_TIMEOUT_MS,
    };

    /// The named cube this spec equals, if any.
    pub fn cube(&self) -> Option<QosCube> {
        QosCube::ALL.into_iter().find(|c| c.spec() == *self)
    }
}

impl Default for QosSpec {
    fn default() -> Self {
        QosSpec::RAW
    }
}

impl fmt::Display for QosSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cube() {
            Some(c) => write!(f, "{c}"),
            None => write!(
                f,
                "delay={} bw={} avail={} loss={} ber={} in_order={} max_gap={} timeout={}",
                self.delay,
                self.bandwidth,
                self.availability,
                self.loss,
                self.ber,
                self.in_order,
                self.max_gap,
                self.timeout
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cube_names_round_trip() {
        for c in QosCube::ALL {
            assert_eq!(c.name().parse::<QosCube>(), Ok(c));
            assert_eq!(c.spec().cube(), Some(c));
        }
        assert!("bogus".parse::<QosCube>().is_err());
    }

    #[test]
    fn prototype_values() {
        assert_eq!(QosSpec::DATA.loss, 0);
        assert_eq!(QosSpec::DATA.max_gap, 2000);
        assert_eq!(QosSpec::VOICE.bandwidth, 100_000);
        assert_eq!(QosSpec::RAW.in_order, 0);
        assert_eq!(QosSpec::VIDEO.bandwidth, u64::MAX);
    }
}
