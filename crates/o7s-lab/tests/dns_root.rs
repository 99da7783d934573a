//! The udp layers' dynamic DNS directory against a real DNS server: BIND's `named` runs in
//! node b's namespace, listening only on b's link addresses; udp4 and udp6 IPCPs on a and b
//! bootstrap with `dns`, names registered on b appear in the server (checked with `dig`) and
//! a reaches them by name alone (no hosts file). Unregistering removes the record and the
//! name is then not found. Refusals and an absent server are reported clearly.
//!
//! Needs root (network namespaces) and the Debian packages `bind9` and `bind9-dnsutils`
//! (`named`, `dig`); without them the test prints a notice and passes.

use o7s_lab::output_text as text;
use o7s_lab::{Lab, Node, Topology};
use o7s_proto::HashAlgo;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How long the IPCP keeps using a DNS answer (`DNS_FRESH` in the udp IPCP), plus margin.
const DNS_FRESH: Duration = Duration::from_millis(1200);

/// A program on `PATH` or in the sbin directories (not always on a test's `PATH`).
fn find(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// A `named` with its own configuration and zones in a directory of its own, serving the
/// root zone (where the prototype's records live) and `o7s.test`, both open to updates from
/// the lab's link addresses only. Killed and its directory removed when dropped, also when
/// the test fails.
struct Named {
    child: Child,
    dir: PathBuf,
}

impl Named {
    fn start(
        node: &Node,
        bin: &Path,
        dir: PathBuf,
        v4: IpAddr,
        v6: IpAddr,
    ) -> Result<Named, Box<dyn std::error::Error>> {
        std::fs::create_dir_all(&dir)?;
        let d = dir.display();
        for (file, ns) in [("root.db", "ns."), ("o7s.test.db", "ns.o7s.test.")] {
            let zone =
                format!("$TTL 60\n@ SOA {ns} root.{ns} 1 60 60 600 60\n@ NS {ns}\n{ns} A {v4}\n");
            std::fs::write(dir.join(file), zone)?;
        }
        let conf = format!(
            r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port 53 {{ {v4}; }};
    listen-on-v6 port 53 {{ {v6}; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
zone "." {{ type primary; file "{d}/root.db"; allow-update {{ 169.254.0.0/16; fd00::/8; }}; }};
zone "o7s.test" {{ type primary; file "{d}/o7s.test.db"; allow-update {{ 169.254.0.0/16; fd00::/8; }}; }};
"#
        );
        let conf_path = dir.join("named.conf");
        std::fs::write(&conf_path, conf)?;
        let log = std::fs::File::create(dir.join("named.log"))?;
        let child = node
            .cmd(&bin.display().to_string())
            .args(["-g", "-u", "root", "-c"])
            .arg(&conf_path)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(Named { child, dir })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("named.log")).unwrap_or_default()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `dig +short` from `node`: the records of `name`, one a line.
fn dig(
    node: &Node,
    server: IpAddr,
    name: &str,
    rtype: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let out = node
        .cmd("dig")
        .args(["+short", "+time=1", "+tries=2"])
        .arg(format!("@{server}"))
        .args([name, rtype])
        .output()?;
    if !out.status.success() {
        return Err(format!("dig {name} {rtype}: {}", text(&out)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn oping(node: &Node, name: &str, count: u32) -> Result<Output, Box<dyn std::error::Error>> {
    Ok(node
        .cmd("oping")
        .args(["-n", name, "-c", &count.to_string(), "-i", "0"])
        .stdin(Stdio::null())
        .output()?)
}

#[test]
fn udp_layers_find_names_through_a_dns_server_root() -> TestResult {
    if !o7s_lab::is_root() {
        eprintln!("skipping: needs root for network namespaces");
        return Ok(());
    }
    let (Some(named_bin), Some(_)) = (find("named"), find("dig")) else {
        eprintln!("skipping: needs named and dig (apt-get install bind9 bind9-dnsutils)");
        return Ok(());
    };
    let lab = Lab::up(&Topology::new().node("a").node("b").link("a", "b"))?;
    let (a, b) = (lab.node("a"), lab.node("b"));
    let a4: IpAddr = a.addr4_to("b").ok_or("no address")?.into();
    let b4: IpAddr = b.addr4_to("a").ok_or("no address")?.into();
    let a6: IpAddr = a.addr6_to("b").ok_or("no address")?.into();
    let b6: IpAddr = b.addr6_to("a").ok_or("no address")?.into();
    let named = Named::start(b, &named_bin, lab.dir().join("named"), b4, b6)?;
    let up = o7s_lab::wait_for(Duration::from_secs(10), || {
        dig(a, b4, ".", "SOA").is_ok_and(|s| !s.is_empty())
            && dig(a, b6, ".", "SOA").is_ok_and(|s| !s.is_empty())
    });
    assert!(up, "named did not come up:\n{}", named.log());
    let logs = || format!("--- a ---\n{}\n--- b ---\n{}", a.log(), b.log());
    let hex = |name: &str| HashAlgo::Md5.hash(name).to_string();

    // udp4, records under the root as in the prototype; udp6 under a zone, the server
    // given with a port.
    let layers = [
        (
            "udp4",
            "net4",
            3435,
            format!("dns {b4}"),
            a4,
            b4,
            "A",
            "srv4",
            format!("{}.", hex("srv4")),
        ),
        (
            "udp6",
            "net6",
            3436,
            format!("dns [{b6}]:53 dns_zone o7s.test"),
            a6,
            b6,
            "AAAA",
            "srv6",
            format!("{}.o7s.test.", hex("srv6")),
        ),
    ];
    for (kind, layer, port, dns, ia, ib, rtype, srv, record) in &layers {
        for (n, ip) in [(a, ia), (b, ib)] {
            n.irm_ok(&format!(
                "ipcp bootstrap type {kind} name {layer}-{} layer {layer} ip {ip} port {port} {dns}",
                n.name()
            ))?;
        }
        b.irm_ok(&format!("bind program oping name {srv} auto -- -l"))?;
        assert_eq!(
            dig(a, b4, record, rtype)?,
            "",
            "no record before registration"
        );
        b.irm_ok(&format!("name reg {srv} layer {layer}"))?;
        assert_eq!(dig(a, b4, record, rtype)?, ib.to_string(), "{}", logs());

        // a knows nothing but its DNS server.
        let out = oping(a, srv, 20)?;
        let t = text(&out);
        assert!(out.status.success(), "{t}\n{}", logs());
        assert!(t.contains("20 packets transmitted, 20 received"), "{t}");

        b.irm_ok(&format!("name unreg {srv} layer {layer}"))?;
        assert_eq!(dig(a, b4, record, rtype)?, "", "record deleted\n{}", logs());
        std::thread::sleep(DNS_FRESH);
        let out = oping(a, srv, 1)?;
        let t = text(&out);
        assert!(!out.status.success(), "{t}");
        assert!(
            t.contains(&format!("name \"{srv}\" is not registered")),
            "{t}"
        );
    }

    // Refusals and silence come back to the user with the server and the reason.
    a.irm_ok(&format!(
        "ipcp bootstrap type udp4 name bad-zone layer badzone ip {a4} port 3437 dns {b4} dns_zone elsewhere.test"
    ))?;
    let out = a.irm("name reg x layer badzone")?;
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains(&format!(
            "DNS server {b4}:53 refused the update adding x ({}.elsewhere.test. A {a4})",
            hex("x")
        )),
        "{t}"
    );
    a.irm_ok("ipcp destroy name bad-zone")?;
    a.irm_ok(&format!(
        "ipcp bootstrap type udp4 name no-server layer noserver ip {a4} port 3438 dns {b4}:5399"
    ))?;
    let out = a.irm("name reg y layer noserver")?;
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains(&format!("cannot reach DNS server {b4}:5399")),
        "{t}"
    );
    let out = oping(a, "y", 1)?;
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains(&format!("cannot reach DNS server {b4}:5399 for the query")),
        "{t}"
    );
    drop(named);
    Ok(())
}
