fn main() -> std::process::ExitCode {
    vipd::cli::main()
}
