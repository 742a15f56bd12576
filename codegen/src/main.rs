//! `gregor-codegen DIR...`: prints the Rust code generated from the definitions in the
//! given directories, or every validation error (and exits with status 1).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        eprintln!("usage: gregor-codegen DIR [DIR...]");
        eprintln!("Prints the Rust code generated from the Kafka JSON definitions in DIR.");
        return ExitCode::from(2);
    }
    match gregor_codegen::generate(&dirs) {
        Ok(generated) => {
            print!("{}", generated.code);
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("error: {error}");
            }
            eprintln!("{} error(s) in the definitions", errors.len());
            ExitCode::FAILURE
        }
    }
}
