//! `ocat`: copy a byte stream over a flow; `ocat -l` is the server.

fn main() {
    std::process::exit(o7s_tools::ocat::main(std::env::args_os()));
}
