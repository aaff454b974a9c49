//! The `rekey` binary (see the library crate: it is the whole program).

fn main() -> std::process::ExitCode {
    rekey::main()
}
