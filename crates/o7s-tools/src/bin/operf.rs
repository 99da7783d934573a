//! `operf`: bandwidth over a flow to a name; `operf -l` is the server.

fn main() {
    std::process::exit(o7s_tools::operf::main(std::env::args_os()));
}
