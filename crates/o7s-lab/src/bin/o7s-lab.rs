//! `o7s-lab`: build, run and picture whole o7s networks from one file. Thin: parses the
//! command line and calls `o7s_lab::cli`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use o7s_lab::cli::{self, UpOptions};
use o7s_lab::saved::{self, Saved};
use o7s_lab::spec::Network;

/// Build, run and picture whole o7s networks: a network file (nodes, links, layers, names)
/// becomes network namespaces joined by veth links, one irmd per node, shim layers on the
/// links and unicast layers over them. See examples/ for network files.
#[derive(Parser)]
#[command(name = "o7s-lab", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Which lab: by name or by directory; default the only lab that is up.
#[derive(Args)]
struct Which {
    /// The lab's name (as `up` printed it)
    #[arg(long, short = 'l')]
    lab: Option<String>,
    /// The lab's directory
    #[arg(long, conflicts_with = "lab")]
    dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the network of FILE and leave it running (needs root, or --host-only)
    Up {
        /// The network file (TOML: [[node]], [[link]], [[layer]], [[name]])
        file: PathBuf,
        /// Keep the lab here (default /run/o7s-lab/NAME as root)
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The lab's name (default: the file's name without .toml)
        #[arg(long)]
        name: Option<String>,
        /// No namespaces: every node an irmd on this host, shim layers as udp4 on 127.0.0.x
        #[arg(long)]
        host_only: bool,
    },
    /// Print every node's IPCPs (layer, address, neighbours, routes) and flows
    Status {
        #[command(flatten)]
        which: Which,
        /// One JSON array, an object per node
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside a node (its namespace and O7S_RUNDIR; our binaries on PATH)
    Exec {
        #[command(flatten)]
        which: Which,
        /// The node
        node: String,
        /// The command and its arguments, after --
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Remove the lab: its namespaces, interfaces, processes and directory (also after a crash)
    Down {
        #[command(flatten)]
        which: Which,
    },
    /// List the labs that are up
    List,
    /// Draw the network (links, shim layers, each layer's adjacencies) as SVG or PNG
    Graph {
        /// A network file; default the running lab's
        file: Option<PathBuf>,
        #[command(flatten)]
        which: Which,
        /// The picture: FILE.svg, or FILE.png (needs rsvg-convert); default NAME.svg here
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
    /// Write DIR/NODE/irmd.toml for every node: the same network on real machines with
    /// `irmd --config` (interface names and addresses are the lab's: edit them)
    Export {
        /// The network file
        file: PathBuf,
        /// Where to write
        dir: PathBuf,
    },
    /// Build the 4-node diamond, ping and measure across its unicast layer, show its status
    /// and picture, remove it (without root: IRMds on this host over UDP)
    Demo,
}

fn find(w: &Which) -> Result<Saved, o7s_lab::LabError> {
    Saved::read(&saved::find(w.lab.as_deref(), w.dir.as_deref())?)
}

fn run(cli: Cli) -> Result<ExitCode, o7s_lab::LabError> {
    match cli.cmd {
        Cmd::Up {
            file,
            dir,
            name,
            host_only,
        } => {
            let opts = UpOptions {
                dir,
                name,
                host_only,
            };
            let rec = cli::up(&file, &opts, &mut |s| println!("{s}"))?;
            println!(
                "lab {} is up; its directory: {}",
                rec.name,
                rec.dir.display()
            );
            let node = rec.nodes.first().map(|n| n.name.as_str()).unwrap_or("NODE");
            println!("next: o7s-lab status | o7s-lab exec {node} -- irm ipcp list | o7s-lab graph | o7s-lab down");
        }
        Cmd::Status { which, json } => {
            let rec = find(&which)?;
            print!("{}", cli::status(&rec, json)?);
        }
        Cmd::Exec { which, node, cmd } => {
            let rec = find(&which)?;
            let mut c = cli::exec(&rec, &node, &cmd)?;
            let st = c.status().map_err(|source| o7s_lab::LabError::Spawn {
                cmd: cmd.join(" "),
                source,
            })?;
            return Ok(ExitCode::from(st.code().unwrap_or(1).clamp(0, 255) as u8));
        }
        Cmd::Down { which } => {
            let dir = saved::find(which.lab.as_deref(), which.dir.as_deref())?;
            let gone = cli::down(&dir)?;
            println!(
                "removed {} ({} namespaces{})",
                dir.display(),
                gone.len(),
                if gone.is_empty() { "" } else { ": " }.to_string() + &gone.join(" ")
            );
        }
        Cmd::List => {
            for d in saved::list() {
                match Saved::read(&d) {
                    Ok(r) => println!(
                        "{}  {}  {} nodes  {}",
                        r.name,
                        d.display(),
                        r.nodes.len(),
                        if r.ready { "up" } else { "incomplete" }
                    ),
                    Err(e) => println!("{}  {e}", d.display()),
                }
            }
        }
        Cmd::Graph { file, which, out } => {
            let (net, title) = match file {
                Some(f) => (Network::load(&f)?, f.display().to_string()),
                None => {
                    let rec = find(&which)?;
                    (cli::network_of(&rec)?, format!("lab {}", rec.name))
                }
            };
            let out = out.unwrap_or_else(|| {
                PathBuf::from(format!(
                    "{}.svg",
                    title
                        .rsplit('/')
                        .next()
                        .unwrap_or("lab")
                        .trim_end_matches(".toml")
                        .replace(' ', "-")
                ))
            });
            o7s_lab::graph::write(&net, &title, &out)?;
            println!("{}", out.display());
        }
        Cmd::Export { file, dir } => {
            let net = Network::load(&file)?;
            let plan = o7s_lab::plan::Plan::new(&net, o7s_lab::plan::Addressing::Netns);
            for f in o7s_lab::export::write(&net, &plan, &file.display().to_string(), &dir)? {
                println!("{}", f.display());
            }
        }
        Cmd::Demo => {
            o7s_lab::demo::run()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("o7s-lab: {e}");
            ExitCode::FAILURE
        }
    }
}
