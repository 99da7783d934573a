//! A unicast layer's settings: from `irm ipcp bootstrap` parameters, and to and from the
//! configuration a member hands a newcomer at enrollment.

use o7s::ctrl::msg::IrmError;
use o7s_proto::wire::dt::DtParams;
use o7s_proto::wire::ipcp_config::{
    CongAvoid, DirConfig, IpcpConfig, IpcpKind, LayerInfo, LsPolicy, Routing, UniConfig,
};
use o7s_proto::HashAlgo;

/// Everything a member of a unicast layer must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub name: String,
    pub hash: HashAlgo,
    pub uni: UniConfig,
}

fn bad(key: &str, value: &str, why: impl Into<String>) -> IrmError {
    IrmError::BadParam {
        key: key.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

fn int<T: TryFrom<u64>>(key: &str, value: &str, lo: u64, hi: u64) -> Result<T, IrmError> {
    let v: u64 = value
        .trim()
        .parse()
        .map_err(|_| bad(key, value, "not a whole number"))?;
    if !(lo..=hi).contains(&v) {
        return Err(bad(key, value, format!("must be {lo}..={hi}")));
    }
    T::try_from(v).map_err(|_| bad(key, value, "out of range"))
}

impl Layer {
    /// The settings of a layer bootstrapped with `params` (the `irm ipcp bootstrap` keys:
    /// `addr`, `eid`, `ttl`, `addr_auth`, `routing`, `ls_t_recalc`, `ls_t_update`,
    /// `ls_t_timeo`, `congestion`, `directory`, `dht_*`, `hash`); the rest keep the
    /// prototype's defaults.
    pub fn from_params(name: &str, params: &[(String, String)]) -> Result<Layer, IrmError> {
        let mut uni = UniConfig::default();
        let mut hash = HashAlgo::default();
        let Routing::LinkState(ls) = &mut uni.dt.routing;
        let DirConfig::Dht(dht) = &mut uni.dir;
        for (k, v) in params {
            match k.as_str() {
                "addr" => uni.dt.addr_size = int(k, v, 1, 8)?,
                "eid" => {
                    if v.trim() != "8" {
                        return Err(bad(k, v, "endpoint ids are 8 bytes in a unicast layer"));
                    }
                }
                "ttl" => uni.dt.max_ttl = int(k, v, 1, 255)?,
                "addr_auth" => {
                    if v != "flat" {
                        return Err(bad(k, v, "the only address authority is flat"));
                    }
                }
                "routing" => {
                    ls.pol = match v.as_str() {
                        "link_state" | "link-state" => LsPolicy::Simple,
                        "lfa" => LsPolicy::Lfa,
                        "ecmp" => LsPolicy::Ecmp,
                        _ => return Err(bad(k, v, "use link_state, lfa or ecmp")),
                    }
                }
                "ls_t_recalc" => ls.t_recalc = int(k, v, 1, u64::from(u32::MAX))?,
                "ls_t_update" => ls.t_update = int(k, v, 1, u64::from(u32::MAX))?,
                "ls_t_timeo" => ls.t_timeo = int(k, v, 1, u64::from(u32::MAX))?,
                "congestion" => {
                    uni.cong_avoid = match v.as_str() {
                        "none" => CongAvoid::None,
                        "mb-ecn" => CongAvoid::MbEcn,
                        _ => return Err(bad(k, v, "use none or mb-ecn")),
                    }
                }
                "directory" => {
                    if !v.eq_ignore_ascii_case("dht") {
                        return Err(bad(k, v, "the only directory is DHT"));
                    }
                }
                "dht_alpha" => dht.alpha = int(k, v, 1, 10)?,
                "dht_k" => dht.k = int(k, v, 1, 20)?,
                "dht_t_expire" => dht.t_expire = int(k, v, 10, 86400)?,
                "dht_t_refresh" => dht.t_refresh = int(k, v, 3, 3600)?,
                "dht_t_replicate" => dht.t_replicate = int(k, v, 3, 3600)?,
                "hash" => {
                    hash = v
                        .parse()
                        .map_err(|e: o7s_proto::hash::UnknownHash| bad(k, v, e.to_string()))?
                }
                _ => return Err(bad(k, v, "not a unicast layer parameter")),
            }
        }
        if !matches!(uni.dt.addr_size, 1 | 2 | 4 | 8) {
            return Err(bad(
                "addr",
                &uni.dt.addr_size.to_string(),
                "must be 1, 2, 4 or 8",
            ));
        }
        if ls.t_update >= ls.t_timeo {
            return Err(bad(
                "ls_t_update",
                &ls.t_update.to_string(),
                format!("must be shorter than ls_t_timeo ({} s)", ls.t_timeo),
            ));
        }
        Ok(Layer {
            name: name.to_string(),
            hash,
            uni,
        })
    }

    /// The settings a member sent at enrollment.
    pub fn from_config(conf: IpcpConfig) -> Result<Layer, String> {
        let IpcpKind::Unicast(uni) = conf.kind else {
            return Err(format!(
                "the member is in a {} layer, not a unicast one",
                kind_name(&conf.kind)
            ));
        };
        DtParams::new(uni.dt.addr_size, uni.dt.eid_size)
            .map_err(|e| format!("the layer's data transfer settings: {e}"))?;
        Ok(Layer {
            name: conf.layer_info.name,
            hash: conf.layer_info.dir_hash_algo,
            uni,
        })
    }

    /// What a member sends a newcomer: the settings, with our address as its DHT contact.
    pub fn to_config(&self, own_addr: u64) -> IpcpConfig {
        let mut uni = self.uni.clone();
        let DirConfig::Dht(d) = &mut uni.dir;
        d.peer = own_addr;
        IpcpConfig {
            layer_info: LayerInfo {
                name: self.name.clone(),
                dir_hash_algo: self.hash,
            },
            kind: IpcpKind::Unicast(uni),
        }
    }

    pub fn dt_params(&self) -> DtParams {
        DtParams::new(self.uni.dt.addr_size, self.uni.dt.eid_size).unwrap_or_default()
    }

    pub fn policy(&self) -> LsPolicy {
        let Routing::LinkState(ls) = &self.uni.dt.routing;
        ls.pol
    }

    pub fn policy_name(&self) -> &'static str {
        match self.policy() {
            LsPolicy::Simple => "link_state",
            LsPolicy::Lfa => "lfa",
            LsPolicy::Ecmp => "ecmp",
        }
    }
}

fn kind_name(k: &IpcpKind) -> &'static str {
    match k {
        IpcpKind::Local => "local",
        IpcpKind::Unicast(_) => "unicast",
        IpcpKind::Broadcast => "broadcast",
        IpcpKind::EthLlc(_) => "eth-llc",
        IpcpKind::EthDix(_) => "eth-dix",
        IpcpKind::Udp4(_) => "udp4",
        IpcpKind::Udp6(_) => "udp6",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_prototypes() {
        let l = Layer::from_params("l", &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.uni, UniConfig::default());
        assert_eq!(l.hash, HashAlgo::default());
        assert_eq!(l.dt_params().header_len(), 15);
    }

    #[test]
    fn parameters_apply_and_round_trip_through_enrollment() {
        let l = Layer::from_params(
            "net",
            &kv(&[
                ("addr", "8"),
                ("ttl", "9"),
                ("routing", "lfa"),
                ("ls_t_recalc", "1"),
                ("congestion", "none"),
                ("hash", "SHA3_512"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.uni.dt.max_ttl, 9);
        assert_eq!(l.policy(), LsPolicy::Lfa);
        assert_eq!(l.dt_params().header_len(), 19);
        let back = Layer::from_config(l.to_config(77)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.name, "net");
        assert_eq!(back.hash, l.hash);
        let DirConfig::Dht(d) = &back.uni.dir;
        assert_eq!(d.peer, 77);
    }

    #[test]
    fn bad_parameters_say_what_is_wrong() {
        for (k, v) in [
            ("addr", "3"),
            ("ttl", "0"),
            ("routing", "ospf"),
            ("eid", "4"),
            ("bogus", "1"),
            ("ls_t_update", "70"),
        ] {
            let e = Layer::from_params("l", &kv(&[(k, v)]));
            assert!(
                matches!(&e, Err(IrmError::BadParam { key, .. }) if key == k),
                "{k}={v}: {e:?}"
            );
        }
    }
}
