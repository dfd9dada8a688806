fn main() -> std::process::ExitCode {
    orglink::cli::run(std::env::args_os())
}
