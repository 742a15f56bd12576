//! Runs `gregor-codegen` over the definitions in `schemas/` (or the directories listed in
//! `GREGOR_SCHEMAS`, which replace it) and writes `$OUT_DIR/messages.rs`.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=GREGOR_SCHEMAS");
    let roots: Vec<PathBuf> = match env::var_os("GREGOR_SCHEMAS") {
        Some(list) => env::split_paths(&list).collect(),
        None => vec![PathBuf::from("schemas")],
    };
    let dirs: Vec<PathBuf> = roots
        .iter()
        .flat_map(|root| definition_dirs(root))
        .collect();
    for dir in &dirs {
        // A new or removed file changes the directory.
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    let generated = match gregor_codegen::generate(&dirs) {
        Ok(generated) => generated,
        Err(errors) => {
            for error in &errors {
                println!("cargo:warning={error}");
            }
            panic!(
                "{} error(s) in the message definitions (listed above)",
                errors.len()
            );
        }
    };
    for input in &generated.inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("messages.rs"), generated.code).expect("write messages.rs");
}

/// The directory itself when it holds definitions, plus its subdirectories that do.
fn definition_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if has_json(root) {
        dirs.push(root.to_path_buf());
    }
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|err| panic!("cannot read schema directory {}: {err}", root.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir() && has_json(path))
        .collect();
    subdirs.sort();
    dirs.extend(subdirs);
    dirs
}

fn has_json(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|x| x == "json"))
    })
}
