//! Tests of the layer configuration codec, and the generator the enrollment tests share.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::wire::pb;
use crate::wire::testing::hex;
use proptest::prelude::*;

/// Any configuration the codec can carry.
pub fn config() -> impl Strategy<Value = IpcpConfig> {
    let name = "[ -~]{0,16}";
    let algo = prop::sample::select(vec![
        HashAlgo::Sha3_224,
        HashAlgo::Sha3_256,
        HashAlgo::Sha3_384,
        HashAlgo::Sha3_512,
    ]);
    let uni = (
        any::<(u8, u8, u8)>(),
        (0u8..3, any::<(u32, u32, u32)>()),
        any::<(u32, u32, u32, u32, u32, u64)>(),
        any::<bool>(),
    )
        .prop_map(
            |((a, e, t), (pol, (r, u, o)), (al, k, x, f, p, peer), ca)| UniConfig {
                dt: DtConfig {
                    addr_size: a,
                    eid_size: e,
                    max_ttl: t,
                    routing: Routing::LinkState(LsConfig {
                        pol: [LsPolicy::Simple, LsPolicy::Lfa, LsPolicy::Ecmp][usize::from(pol)],
                        t_recalc: r,
                        t_update: u,
                        t_timeo: o,
                    }),
                },
                dir: DirConfig::Dht(DhtConfig {
                    alpha: al,
                    k,
                    t_expire: x,
                    t_refresh: f,
                    t_replicate: p,
                    peer,
                }),
                addr_auth: AddrAuth::FlatRandom,
                cong_avoid: if ca {
                    CongAvoid::MbEcn
                } else {
                    CongAvoid::None
                },
            },
        );
    let eth = (name, any::<u16>()).prop_map(|(dev, ethertype)| EthConfig { dev, ethertype });
    let kind = prop_oneof![
        Just(IpcpKind::Local),
        Just(IpcpKind::Broadcast),
        uni.prop_map(IpcpKind::Unicast),
        eth.clone().prop_map(IpcpKind::EthLlc),
        eth.prop_map(IpcpKind::EthDix),
        any::<([u8; 4], u16, [u8; 4])>().prop_map(|(i, port, d)| IpcpKind::Udp4(Udp4Config {
            ip_addr: i.into(),
            port,
            dns_addr: d.into()
        })),
        any::<([u8; 16], u16, [u8; 16])>().prop_map(|(i, port, d)| IpcpKind::Udp6(Udp6Config {
            ip_addr: i.into(),
            port,
            dns_addr: d.into()
        })),
    ];
    (name, algo, kind).prop_map(|(name, dir_hash_algo, kind)| IpcpConfig {
        layer_info: LayerInfo {
            name,
            dir_hash_algo,
        },
        kind,
    })
}

fn layer() -> LayerInfo {
    LayerInfo {
        name: "layer".into(),
        dir_hash_algo: HashAlgo::Sha3_256,
    }
}

fn check(conf: &IpcpConfig, bytes: &[u8]) {
    let raw = conf.to_raw().unwrap();
    assert_eq!(prost::Message::encode_to_vec(&raw), bytes, "emit");
    let back: raw::IpcpConfigMsg = pb::decode(bytes).unwrap();
    assert_eq!(&IpcpConfig::from_raw(back).unwrap(), conf, "parse");
}

#[test]
fn udp4_vector() {
    // 0a 09 { 0a 05 "layer" 10 01 (SHA3-256) } | 10 05 (udp4) | 22 0a { 08 8a 80 80 08
    // (10.0.0.1 as the little-endian integer 0x0100000a) 10 eb 1a (port 3435) 18 00 }
    let conf = IpcpConfig {
        layer_info: layer(),
        kind: IpcpKind::Udp4(Udp4Config {
            ip_addr: Ipv4Addr::new(10, 0, 0, 1),
            port: 3435,
            dns_addr: Ipv4Addr::UNSPECIFIED,
        }),
    };
    check(
        &conf,
        &hex("0a 09 0a 05 6c61796572 10 01 10 05 22 0a 08 8a808008 10 eb1a 18 00"),
    );
}

#[test]
fn eth_dix_vector() {
    // ... | 10 04 (eth-dix) | 32 0a { 0a 04 "eth0" 10 80 c0 02 (ethertype 0xa000) }
    let conf = IpcpConfig {
        layer_info: layer(),
        kind: IpcpKind::EthDix(EthConfig {
            dev: "eth0".into(),
            ethertype: 0xa000,
        }),
    };
    check(
        &conf,
        &hex("0a 09 0a 05 6c61796572 10 01 10 04 32 0a 0a 04 65746830 10 80c002"),
    );
}

#[test]
fn refusals() {
    let dec = |h: &str| pb::decode::<raw::IpcpConfigMsg>(&hex(h)).and_then(IpcpConfig::from_raw);
    // Unicast without its sub-message.
    assert_eq!(
        dec("0a 09 0a 05 6c61796572 10 01 10 01"),
        Err(WireError::MissingField("unicast"))
    );
    // Unknown type, unknown hash algorithm.
    assert!(matches!(
        dec("0a 09 0a 05 6c61796572 10 01 10 07"),
        Err(WireError::BadValue { .. })
    ));
    assert!(matches!(
        dec("0a 09 0a 05 6c61796572 10 04 10 02"),
        Err(WireError::BadValue { .. })
    ));
    // A port that does not fit 16 bits.
    assert!(matches!(
        dec("0a 09 0a 05 6c61796572 10 01 10 05 22 0b 08 8a808008 10 808004 18 00"),
        Err(WireError::BadValue { .. })
    ));
    let md5 = IpcpConfig {
        layer_info: LayerInfo {
            name: "x".into(),
            dir_hash_algo: HashAlgo::Md5,
        },
        kind: IpcpKind::Local,
    };
    assert!(md5.to_raw().is_err());
}

proptest! {
    #[test]
    fn round_trip(conf in config()) {
        let bytes = prost::Message::encode_to_vec(&conf.to_raw().unwrap());
        let back: raw::IpcpConfigMsg = pb::decode(&bytes).unwrap();
        prop_assert_eq!(IpcpConfig::from_raw(back), Ok(conf));
    }
}
