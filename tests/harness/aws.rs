//! The benches (`benches/{poll,probe,verify}.rs`) include the emulator
//! harness by this path; the harness itself lives in `tests/it/harness/`.

#![allow(dead_code)] // each bench uses part of it

include!("../it/harness/aws.rs");
