//! Messages of the unicast layer's directory, a Kademlia DHT keyed by name hash: the payload
//! of data transfer packets to endpoint [`DHT_EID`](super::dt::DHT_EID) (1), QoS cube best
//! effort.
//!
//! The prototype encodes them with protobuf-c from `src/ipcpd/unicast/dir/dht.proto`
//! (proto2); this module keeps its field numbers and types (with `prost`; a required scalar is an
//! `Option` inside, so that its absence shows):
//!
//! ```text
//! message dht_contact_msg        { required bytes  id = 1;     required uint64 addr = 2; }
//! message dht_find_req_msg       { required uint64 cookie = 1; required bytes key = 2; }
//! message dht_find_node_rsp_msg  { required uint64 cookie = 1; required bytes key = 2;
//!                                  repeated dht_contact_msg contacts = 3; }
//! message dht_find_value_rsp_msg { repeated bytes values = 1; }
//! message dht_store_msg          { required bytes key = 1; required bytes val = 2;
//!                                  required uint32 exp = 3; }
//! message dht_msg { required uint32 code = 1; required dht_contact_msg src = 2;
//!                   optional dht_store_msg store = 3; optional dht_find_req_msg find = 4;
//!                   optional dht_find_node_rsp_msg node = 5;
//!                   optional dht_find_value_rsp_msg val = 6; }
//! ```
//!
//! | code | message        | sub-messages | answer                          |
//! |------|----------------|--------------|---------------------------------|
//! | 0    | STORE          | `store`      | none                            |
//! | 1    | FIND_NODE_REQ  | `find`       | FIND_NODE_RSP, same cookie/key  |
//! | 2    | FIND_NODE_RSP  | `node`       | —                               |
//! | 3    | FIND_VALUE_REQ | `find`       | FIND_VALUE_RSP, same cookie/key |
//! | 4    | FIND_VALUE_RSP | `node`, `val`| —                               |
//!
//! Every message carries its sender as `src` (node id and address). Node ids and keys are as
//! long as the layer's name hashes; a value in the directory is an address as 8 big-endian
//! bytes ([`addr_value`]); `exp` is the absolute expiry time in seconds since the epoch.
//! Sub-messages a code does not use are ignored on receipt, as the prototype does.
//!
//! ```
//! use o7s_proto::wire::dht::{addr_value, Contact, DhtBody, DhtMsg};
//! use o7s_proto::HashAlgo;
//!
//! let msg = DhtMsg {
//!     src: Contact { id: vec![0xaa; 32], addr: 0x0102_0304 },
//!     body: DhtBody::Store {
//!         key: HashAlgo::Sha3_256.hash("oping"),
//!         val: addr_value(0x0506_0708).to_vec(),
//!         exp: 1_767_225_600,
//!     },
//! };
//! let bytes = msg.to_vec();
//! assert_eq!(DhtMsg::parse(&bytes, 32).unwrap(), msg);
//! ```

use super::pb::{self, req};
use super::{Result, WireError};
use crate::NameHash;

/// The Kademlia parameters and timers of the prototype's DHT. The first five are the layer
/// defaults (`default_dht_config`), carried in the layer configuration and bounded by the
/// `_MIN`/`_MAX` limits the prototype's configuration accepts; the rest are compiled in.
pub mod consts {
    /// Number of concurrent requests of a lookup.
    pub const ALPHA: u32 = 3;
    /// Bucket size and number of replicas of a value (STORE goes to the `k` closest nodes).
    pub const K: u32 = 8;
    /// Seconds a value lives after it is stored.
    pub const T_EXPIRE: u32 = 86_400;
    /// Seconds after which a bucket's contacts are refreshed.
    pub const T_REFRESH: u32 = 900;
    /// Seconds between replications of the values a node holds.
    pub const T_REPLICATE: u32 = 900;

    pub const ALPHA_MIN: u32 = 1;
    pub const ALPHA_MAX: u32 = 10;
    pub const K_MIN: u32 = 1;
    pub const K_MAX: u32 = 20;
    pub const T_EXPIRE_MIN: u32 = 10;
    pub const T_EXPIRE_MAX: u32 = 86_400;
    pub const T_REFRESH_MIN: u32 = 3;
    pub const T_REFRESH_MAX: u32 = 3_600;
    pub const T_REPLICATE_MIN: u32 = 3;
    pub const T_REPLICATE_MAX: u32 = 3_600;

    /// Most lookups in progress at once (`DHT_MAX_REQS`).
    pub const MAX_REQS: usize = 128;
    /// Lookups in progress above which the prototype warns (`DHT_WARN_REQS`).
    pub const WARN_REQS: usize = 100;
    /// Most values returned for one key (`DHT_MAX_VALS`).
    pub const MAX_VALS: usize = 8;
    /// Seconds a value learnt from a lookup is cached (`DHT_T_CACHE`).
    pub const T_CACHE: u32 = 60;
    /// Seconds to wait for a response (`DHT_T_RESP`).
    pub const T_RESP: u32 = 2;
    /// A node's own value is republished when it expires within this many replication
    /// periods (`DHT_N_REPUB`).
    pub const N_REPUB: u32 = 5;
    /// Ping retries before a contact is declared dead (`DHT_R_PING`).
    pub const R_PING: u32 = 2;
    /// Seconds of silence after which a contact is questionable (`DHT_QUEER`).
    pub const T_QUEER: u32 = 15;
    /// Bits of the id consumed per level of the bucket tree (`DHT_BETA`): 256 children.
    pub const BETA: u32 = 8;
    /// Retries when sending a response fails (`DHT_RESP_RETR`).
    pub const RESP_RETR: u32 = 6;
    /// The invalid cookie (`DHT_INVALID`); requests never carry it.
    pub const INVALID_COOKIE: u64 = 0;
}

/// DHT message codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DhtCode {
    Store = 0,
    FindNodeReq = 1,
    FindNodeRsp = 2,
    FindValueReq = 3,
    FindValueRsp = 4,
}

impl TryFrom<u32> for DhtCode {
    type Error = WireError;
    fn try_from(v: u32) -> Result<Self> {
        match v {
            0 => Ok(DhtCode::Store),
            1 => Ok(DhtCode::FindNodeReq),
            2 => Ok(DhtCode::FindNodeRsp),
            3 => Ok(DhtCode::FindValueReq),
            4 => Ok(DhtCode::FindValueRsp),
            other => Err(WireError::BadValue {
                field: "dht code",
                value: u64::from(other),
            }),
        }
    }
}

/// A value that is an address: 8 bytes, big-endian (the prototype's `addr_to_buf`).
pub fn addr_value(addr: u64) -> [u8; 8] {
    addr.to_be_bytes()
}

/// The address in a value, if it is one (8 bytes).
pub fn value_addr(val: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(val).ok().map(u64::from_be_bytes)
}

/// A DHT node: its id (as long as the layer's hashes) and its address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Contact {
    pub id: Vec<u8>,
    pub addr: u64,
}

/// What a DHT message says, by code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtBody {
    /// Code 0: store `val` under `key` until `exp` (seconds since the epoch).
    Store {
        key: NameHash,
        val: Vec<u8>,
        exp: u32,
    },
    /// Code 1: which nodes are closest to `key`?
    FindNodeReq { cookie: u64, key: NameHash },
    /// Code 2: these (up to `k`).
    FindNodeRsp {
        cookie: u64,
        key: NameHash,
        contacts: Vec<Contact>,
    },
    /// Code 3: what values are stored under `key`?
    FindValueReq { cookie: u64, key: NameHash },
    /// Code 4: these values (up to [`consts::MAX_VALS`]), and the closest nodes known.
    FindValueRsp {
        cookie: u64,
        key: NameHash,
        contacts: Vec<Contact>,
        values: Vec<Vec<u8>>,
    },
}

/// A DHT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtMsg {
    /// The sender.
    pub src: Contact,
    pub body: DhtBody,
}

/// The prototype's schema, with required scalars as `Option` to see their absence.
mod raw {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContactMsg {
        #[prost(bytes = "vec", optional, tag = "1")]
        pub id: Option<Vec<u8>>,
        #[prost(uint64, optional, tag = "2")]
        pub addr: Option<u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FindReqMsg {
        #[prost(uint64, optional, tag = "1")]
        pub cookie: Option<u64>,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub key: Option<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FindNodeRspMsg {
        #[prost(uint64, optional, tag = "1")]
        pub cookie: Option<u64>,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub key: Option<Vec<u8>>,
        #[prost(message, repeated, tag = "3")]
        pub contacts: Vec<ContactMsg>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FindValueRspMsg {
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub values: Vec<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StoreMsg {
        #[prost(bytes = "vec", optional, tag = "1")]
        pub key: Option<Vec<u8>>,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub val: Option<Vec<u8>>,
        #[prost(uint32, optional, tag = "3")]
        pub exp: Option<u32>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DhtMsg {
        #[prost(uint32, optional, tag = "1")]
        pub code: Option<u32>,
        #[prost(message, optional, tag = "2")]
        pub src: Option<ContactMsg>,
        #[prost(message, optional, tag = "3")]
        pub store: Option<StoreMsg>,
        #[prost(message, optional, tag = "4")]
        pub find: Option<FindReqMsg>,
        #[prost(message, optional, tag = "5")]
        pub node: Option<FindNodeRspMsg>,
        #[prost(message, optional, tag = "6")]
        pub val: Option<FindValueRspMsg>,
    }
}

/// Bytes of exactly `hash_len`.
fn sized(v: Option<Vec<u8>>, hash_len: usize, field: &'static str) -> Result<Vec<u8>> {
    let v = req(v, field)?;
    if v.len() != hash_len {
        return Err(WireError::BadLength {
            field,
            value: v.len(),
        });
    }
    Ok(v)
}

fn contact(c: raw::ContactMsg, hash_len: usize, field: &'static str) -> Result<Contact> {
    let id = sized(c.id, hash_len, field)?;
    let addr = req(c.addr, "contact addr")?;
    Ok(Contact { id, addr })
}

fn raw_contact(c: &Contact) -> raw::ContactMsg {
    raw::ContactMsg {
        id: Some(c.id.clone()),
        addr: Some(c.addr),
    }
}

impl DhtBody {
    pub fn code(&self) -> DhtCode {
        match self {
            DhtBody::Store { .. } => DhtCode::Store,
            DhtBody::FindNodeReq { .. } => DhtCode::FindNodeReq,
            DhtBody::FindNodeRsp { .. } => DhtCode::FindNodeRsp,
            DhtBody::FindValueReq { .. } => DhtCode::FindValueReq,
            DhtBody::FindValueRsp { .. } => DhtCode::FindValueRsp,
        }
    }
}

impl DhtMsg {
    pub fn code(&self) -> DhtCode {
        self.body.code()
    }

    /// Decode a message of a layer whose hashes (so node ids and keys) are `hash_len` bytes.
    ///
    /// Refused, as by the prototype: malformed protobuf, a missing required field or
    /// sub-message, an unknown code, a sender id or key of another length, the sender address
    /// 0, an empty stored value. Refused here only: a contact id of another length in a
    /// response (the prototype copies `hash_len` bytes from it whatever its length).
    pub fn parse(bytes: &[u8], hash_len: usize) -> Result<DhtMsg> {
        let m: raw::DhtMsg = pb::decode(bytes)?;
        let code = DhtCode::try_from(req(m.code, "code")?)?;
        let src = contact(req(m.src, "src")?, hash_len, "src id")?;
        if src.addr == 0 {
            return Err(WireError::BadValue {
                field: "src addr",
                value: 0,
            });
        }
        let key = |k: Option<Vec<u8>>| sized(k, hash_len, "key").map(NameHash);
        let node = |n: Option<raw::FindNodeRspMsg>| -> Result<(u64, NameHash, Vec<Contact>)> {
            let n = req(n, "node")?;
            let contacts = n
                .contacts
                .into_iter()
                .map(|c| contact(c, hash_len, "contact id"))
                .collect::<Result<Vec<_>>>()?;
            Ok((req(n.cookie, "cookie")?, key(n.key)?, contacts))
        };
        let body = match code {
            DhtCode::Store => {
                let s = req(m.store, "store")?;
                let val = req(s.val, "val")?;
                if val.is_empty() {
                    return Err(WireError::BadLength {
                        field: "val",
                        value: 0,
                    });
                }
                DhtBody::Store {
                    key: key(s.key)?,
                    val,
                    exp: req(s.exp, "exp")?,
                }
            }
            DhtCode::FindNodeReq | DhtCode::FindValueReq => {
                let f = req(m.find, "find")?;
                let cookie = req(f.cookie, "cookie")?;
                let key = key(f.key)?;
                if code == DhtCode::FindNodeReq {
                    DhtBody::FindNodeReq { cookie, key }
                } else {
                    DhtBody::FindValueReq { cookie, key }
                }
            }
            DhtCode::FindNodeRsp => {
                let (cookie, key, contacts) = node(m.node)?;
                DhtBody::FindNodeRsp {
                    cookie,
                    key,
                    contacts,
                }
            }
            DhtCode::FindValueRsp => {
                let values = req(m.val, "val")?.values;
                let (cookie, key, contacts) = node(m.node)?;
                DhtBody::FindValueRsp {
                    cookie,
                    key,
                    contacts,
                    values,
                }
            }
        };
        Ok(DhtMsg { src, body })
    }

    fn raw(&self) -> raw::DhtMsg {
        let mut m = raw::DhtMsg {
            code: Some(self.code() as u32),
            src: Some(raw_contact(&self.src)),
            ..Default::default()
        };
        let node = |cookie: &u64, key: &NameHash, contacts: &[Contact]| raw::FindNodeRspMsg {
            cookie: Some(*cookie),
            key: Some(key.0.clone()),
            contacts: contacts.iter().map(raw_contact).collect(),
        };
        match &self.body {
            DhtBody::Store { key, val, exp } => {
                m.store = Some(raw::StoreMsg {
                    key: Some(key.0.clone()),
                    val: Some(val.clone()),
                    exp: Some(*exp),
                })
            }
            DhtBody::FindNodeReq { cookie, key } | DhtBody::FindValueReq { cookie, key } => {
                m.find = Some(raw::FindReqMsg {
                    cookie: Some(*cookie),
                    key: Some(key.0.clone()),
                })
            }
            DhtBody::FindNodeRsp {
                cookie,
                key,
                contacts,
            } => m.node = Some(node(cookie, key, contacts)),
            DhtBody::FindValueRsp {
                cookie,
                key,
                contacts,
                values,
            } => {
                m.node = Some(node(cookie, key, contacts));
                m.val = Some(raw::FindValueRspMsg {
                    values: values.clone(),
                });
            }
        }
        m
    }

    /// Length of the encoded message.
    pub fn buffer_len(&self) -> usize {
        prost::Message::encoded_len(&self.raw())
    }

    /// Encode into `buf[..buffer_len()]`, fields in the order protobuf-c writes them; returns
    /// the length. Lengths are not checked here: [`Self::parse`] checks them on the other end.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        pb::encode(&self.raw(), buf)
    }

    /// The encoded message.
    pub fn to_vec(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&self.raw())
    }
}

#[cfg(test)]
mod tests;
