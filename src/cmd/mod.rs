//! Command implementations of the `gazette` binary, one module per area.
//! They turn library results into output for people (or `--json`) and exit
//! codes; the work itself is in the library.

pub mod backup;
pub mod mail;
pub mod serve;
