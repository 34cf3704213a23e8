//! Tool integrity: what a `tools/list` answer tells the model about its tools, checked before the
//! model reads it.
//!
//! - [`fold`]: text in the one form a check compares (NFKC, case folding, invisible characters
//!   removed, homoglyphs folded), and which characters are invisible.
//! - [`poison`]: the response inspector that finds poisoned tool definitions (invisible
//!   characters, instructions aimed at the model, names confusable with another tool's) and
//!   drops those tools, refuses the list, or only reports, as the policy says.

pub mod apps;
pub mod baseline;
pub mod call;
pub mod config;
pub mod fingerprint;
pub mod fold;
pub mod poison;
pub mod tasks;
