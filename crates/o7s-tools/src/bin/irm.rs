//! `irm`: manage the IPC processes, names and flows of this system (see `irm help`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(o7s_tools::irm::main(&args));
}
