//! `ocbr`: constant-bit-rate sender; `ocbr -l` is the reporting receiver.

fn main() {
    std::process::exit(o7s_tools::ocbr::main(std::env::args_os()));
}
