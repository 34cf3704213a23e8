//! Configuration and policy in two stages: [`spec`] is what operators write (serde, unknown
//! fields rejected, errors name the JSON path, see [`error`]); [`compile`](mod@compile) turns it
//! into the immutable [`Policy`] the data path uses, with the hash of its canonical bytes for
//! receipts. An invalid document never replaces a compiled policy: the caller keeps the last
//! good one.
//!
//! - [`eval`]: kill switch → rules in order → default, for one request ([`enforce`]); which list
//!   items a principal may see ([`item_visible`]).
//! - [`killswitch`]: the kill list (configuration and control endpoint).
//! - [`lists`]: `tools/list`, `prompts/list`, `resources/list` results filtered by visibility,
//!   and, in [`list_filter`], as the response pipeline's first inspector.
//! - [`scan`]: the content-scan settings (`content_scan`): actions per class and detector,
//!   canaries, suppressions, the byte budget.
//! - [`confirm`](mod@confirm): the `confirm` section (how long a question stays open, what
//!   clients that cannot be asked get).
//! - [`glob`], [`jsonpath`]: name patterns; JSON paths for error messages.
//!
//! The answers policy gives (403 / 429 / 503 / hidden as unknown) are built in
//! [`crate::flow::reply`].

pub mod compile;
pub mod confirm;
pub mod correlate;
pub mod error;
pub mod eval;
pub mod glob;
pub mod integrity;
pub mod jsonpath;
pub mod killswitch;
pub mod list_filter;
pub mod lists;
pub mod scan;
pub mod spec;

pub use compile::{compile, load, ControlConfig, Policy, Rule, RuleAction};
pub use error::ConfigError;
pub use eval::{
    enforce, enforce_keyed, item_visible, list_varies, task_tool_verdict, tool_visible, tools_list_varies, Action, DryRunHit,
    Verdict,
};
pub use killswitch::KillSwitch;
pub use lists::{filter_list, filter_tools_list, ListKind};
