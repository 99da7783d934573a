//! What the layered IPCPs (unicast and broadcast) share, as the prototype's `ipcpd/common`:
//! opening lower flows with the connection-establishment exchange (CEP), accepting them, and
//! enrollment (a newcomer asks a member for the layer's configuration). Nothing here knows
//! what a layer does with its connections: the caller's closures and types decide.

pub mod cep;
pub mod enroll;
