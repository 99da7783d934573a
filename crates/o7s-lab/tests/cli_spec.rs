//! Network files of `o7s-lab`: every example parses and exports to `irmd.toml` files the
//! IRMd accepts; malformed files are refused with the line and the key at fault. No root.

use o7s_lab::plan::{Addressing, Plan};
use o7s_lab::spec::Network;
use std::path::PathBuf;

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_parses_and_exports_configs_the_irmd_accepts() {
    let ex = examples();
    assert!(ex.len() >= 4, "{ex:?}");
    for f in ex {
        let net = Network::load(&f).unwrap_or_else(|e| panic!("{e}"));
        let plan = Plan::new(&net, Addressing::Netns);
        let out = tempfile::tempdir().expect("tempdir");
        let files = o7s_lab::export::write(&net, &plan, "x", out.path()).expect("export");
        assert_eq!(files.len(), net.topology.nodes.len());
        for c in files {
            let text = std::fs::read_to_string(&c).expect("read");
            let reqs = o7s_irmd::config::parse(&text, &c.display().to_string())
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", f.display()));
            assert!(!reqs.is_empty());
        }
        let svg = o7s_lab::graph::svg(&net, "t");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}

const BASE: &str =
    "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[[link]]\na = \"a\"\nb = \"b\"\n\
[[layer]]\nname = \"eth\"\ntype = \"eth-dix\"\n";

#[test]
fn malformed_files_name_line_and_key() {
    let mut bad = Vec::new();
    for (extra, line, key, needle) in [
        ("[[layer]]\nname = \"net\"\ntype = \"unicats\"\n", 13, "layer[1].type", "unknown type"),
        ("[[layer]]\nname = \"net\"\ntype = \"unicast\"\nover = [\"nope\"]\n", 14, "layer[1].over", "not defined"),
        ("[[layer]]\nname = \"net\"\ntype = \"unicast\"\n", 12, "layer[1].over", "needs `over"),
        ("[[layer]]\nname = \"net\"\ntype = \"unicast\"\nover = [\"eth\"]\nparams = { colour = 1 }\n", 15, "layer[1].params.colour", "not a unicast parameter"),
        ("[[layer]]\nname = \"bc\"\ntype = \"broadcast\"\n", 12, "layer[1].over", "needs `over"),
        ("[[layer]]\nname = \"bc\"\ntype = \"broadcast\"\nover = [\"eth\"]\nadjacencies = [[\"a\", \"b\"], [\"b\", \"a\"]]\n", 15, "layer[1].adjacencies", "closes a cycle"),
        ("[[layer]]\nname = \"bc\"\ntype = \"broadcast\"\nover = [\"eth\"]\n[[name]]\nname = \"x\"\nnodes = [\"a\"]\nlayer = \"bc\"\n", 18, "name[0].layer", "no names"),
        ("[[layer]]\nname = \"bc\"\ntype = \"broadcast\"\nover = [\"eth\"]\n[[layer]]\nname = \"up\"\ntype = \"unicast\"\nover = [\"bc\"]\n", 18, "layer[2].over", "is a broadcast layer"),
        ("[[layer]]\nname = \"n\"\ntype = \"unicast\"\nover = [\"eth\"]\nbootstrap = \"z\"\n", 15, "layer[1].bootstrap", "not a member"),
        ("[[name]]\nname = \"x\"\nnodes = [\"c\"]\nlayer = \"eth\"\n", 13, "name[0].nodes", "not defined"),
        ("[[name]]\nname = \"x\"\nnodes = [\"a\"]\nlayer = \"eth\"\nargs = \"-l\"\n", 15, "name[0].args", "without prog"),
        ("[[link]]\na = \"a\"\nb = \"q\"\n", 13, "link[1].b", "not defined"),
        ("[[link]]\na = \"a\"\nb = \"b\"\nmtu = \"big\"\n", 14, "mtu", "invalid type"),
        ("[[node]]\nname = \"c\"\ncolour = \"red\"\n", 13, "colour", "unknown field"),
        ("[[layer]]\nname = \"up\"\ntype = \"unicast\"\nover = [\"eth\"]\n[[layer]]\nname = \"up2\"\ntype = \"unicast\"\nover = [\"up\"]\n", 18, "layer[2].adjacencies", "adjacencies listed"),
    ] {
        let text = format!("{BASE}{extra}");
        let e = Network::from_toml(&text, "t.toml").expect_err(extra);
        let msg = e.to_string();
        let ok = (e.line, e.key.as_str()) == (line, key)
            && msg.starts_with(&format!("t.toml:{line}: {key}: "))
            && msg.contains(needle);
        if !ok {
            bad.push(format!("want {line} {key} {needle:?}, got {msg}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_cli_refuses_a_bad_file_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("bad.toml");
    std::fs::write(
        &f,
        format!("{BASE}[[layer]]\nname = \"n\"\ntype = \"nope\"\n"),
    )
    .expect("write");
    for sub in ["up", "graph", "export"] {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_o7s-lab"));
        c.arg(sub).arg(&f);
        if sub == "export" {
            c.arg(dir.path().join("out"));
        }
        let out = c.output().expect("run o7s-lab");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("bad.toml:13: layer[1].type: unknown type"),
            "{sub}: {err}"
        );
    }
}

/// `graph` writes an SVG, and a PNG through rsvg-convert (or says what to install).
#[test]
fn graph_writes_svg_and_png() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = examples()
        .into_iter()
        .find(|p| p.ends_with("diamond.toml"))
        .expect("examples/diamond.toml");
    let draw = |out: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_o7s-lab"))
            .arg("graph")
            .arg(&file)
            .arg("--out")
            .arg(out)
            .output()
            .expect("run o7s-lab")
    };
    let svg = dir.path().join("d.svg");
    let o = draw(&svg);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&svg).expect("svg written");
    assert!(
        text.starts_with("<svg") && text.contains("unicast"),
        "{text}"
    );

    let png = dir.path().join("d.png");
    let o = draw(&png);
    let have_rsvg = std::process::Command::new("rsvg-convert")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if have_rsvg {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bytes = std::fs::read(&png).expect("png written");
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 1000);
    } else {
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("apt-get install librsvg2-bin"), "{err}");
    }
}
