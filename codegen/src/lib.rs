//! `gregor-codegen`: reads Apache Kafka's JSON message definitions and emits Rust codecs.
//!
//! The pipeline is three steps, one module each:
//! 1. [`spec`]: parse a file into a strict serde model (unknown keys are errors);
//! 2. [`model`]: validate it as Kafka's own generator does and resolve every struct;
//! 3. `emit`: build the Rust code with `quote` and print it with `prettyplease`.
//!
//! `build.rs` of `gregor-protocol` calls [`generate`]; the `gregor-codegen` binary prints
//! the same output (or the validation errors) for any directories of definitions.

pub mod model;
pub mod naming;
pub mod spec;
pub mod versions;

mod emit;

use std::path::{Path, PathBuf};

pub use model::Error;

/// The result of a successful run.
#[derive(Debug)]
pub struct Generated {
    /// The generated Rust source.
    pub code: String,
    /// Every definition file that was read (for `cargo:rerun-if-changed`).
    pub inputs: Vec<PathBuf>,
}

/// Generates code for every `*.json` definition in `dirs`.
pub fn generate(dirs: &[PathBuf]) -> Result<Generated, Vec<Error>> {
    let messages = model::load(dirs)?;
    let inputs = messages.iter().map(|m| m.path.clone()).collect();
    Ok(Generated {
        code: emit::generate(&messages),
        inputs,
    })
}

/// Generates the module of a single definition given as text (used by snapshot tests).
pub fn generate_one(path: &Path, text: &str) -> Result<String, Vec<Error>> {
    let message = model::build(path, text)?;
    Ok(emit::generate_module(&message))
}
