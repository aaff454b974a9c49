//! `rekey`, built in this package so that its tests can run it (`CARGO_BIN_EXE_rekey-under-test`).

fn main() -> std::process::ExitCode {
    rekey::main()
}
