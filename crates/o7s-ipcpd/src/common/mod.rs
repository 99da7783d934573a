//! What the layered IPCPs (unicast and broadcast) share, as the prototype's `ipcpd/common`:
//! opening lower flows with the connection-establishment exchange (CEP), accepting them, and
//! enrollment (a newcomer asks a member for the layer's configuration). Nothing here knows
//! what a layer does with its connections: the caller's closures and types decide.

pub mod cep;
pub mod enroll;

use o7s::ctrl::msg::IrmError;
use o7s_proto::QosSpec;

/// The peer timeout of a neighbour's lower flow: how long a silent neighbour takes to be
/// declared gone, and so how fast routing reacts to a cut link (keepalives go every quarter
/// of it).
pub const ADJ_TIMEOUT_MS: u32 = 1000;

/// The QoS of the lower flows to neighbours: raw (no FRCT, as the prototype), with a short
/// peer timeout unless the user asked for a cube.
pub fn adj_qos(cube: Option<&str>) -> Result<QosSpec, IrmError> {
    match cube {
        None => Ok(QosSpec {
            timeout: ADJ_TIMEOUT_MS,
            ..QosSpec::RAW
        }),
        Some(c) => c
            .parse::<o7s_proto::QosCube>()
            .map(|c| c.spec())
            .map_err(|e| IrmError::BadParam {
                key: "qos".into(),
                value: c.into(),
                why: e.to_string(),
            }),
    }
}
