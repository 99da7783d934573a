//! `oping`: round-trip times over a flow to a name; `oping -l` is the server.

fn main() {
    std::process::exit(o7s_tools::oping::main(std::env::args_os()));
}
