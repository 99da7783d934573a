//! `obc`: send a message to a broadcast layer; `obc -l` listens.

fn main() {
    std::process::exit(o7s_tools::obc::main(std::env::args_os()));
}
