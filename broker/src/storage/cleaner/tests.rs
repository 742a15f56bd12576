//! Tests of the cleaner.
