//! Tool integrity without sessions: what the model is told about its tools, what the host
//! renders, and whose tasks are whose, checked against state keyed by upstream and principal
//! (settings: [`crate::policy::integrity`]; fingerprints: [`crate::mcp::fingerprint`]).
//!
//! Text is compared in its [`crate::fold`]ed form (shared with the content scan).
//!
//! - [`poison`]: the response inspector that finds poisoned tool definitions (invisible
//!   characters, instructions aimed at the model, names confusable with another tool's, here or
//!   behind another upstream) and drops those tools, refuses the list, or only reports.
//! - [`baseline`]: learning tool baselines from lists, pins, server identity.
//! - [`call`]: the call-time check of a `tools/call` against pin and baseline.
//! - [`apps`]: `ui://` templates pinned by content, CSP allowlist; `list_changed` notifications.
//! - [`tasks`]: task ids bound to the principal that created them.

pub mod apps;
pub mod baseline;
pub mod call;
pub mod poison;
pub mod tasks;
