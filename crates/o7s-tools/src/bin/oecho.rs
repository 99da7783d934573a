//! `oecho`: echo a message over a flow; `oecho -l` is the server.

fn main() {
    std::process::exit(o7s_tools::oecho::main(std::env::args_os()));
}
