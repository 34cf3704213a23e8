//! What one worker VM remembers between its streams, gathered from the capabilities that keep
//! something per VM: confirmed session bindings (until they are due to be extended), what it
//! knows of baselines ([`BaselineCache`]), the tool names its metrics may carry as labels
//! (bounded per VM), the confirmation key with its nonce counter, and the identity digests of
//! recent callers ([`DigestMemo`]). Shared data stays the one
//! authority for everything that is state.

use crate::confirm::ConfirmVm;
use crate::digest_memo::DigestMemo;
use crate::metrics::ToolLabels;
use crate::state::baselines::BaselineCache;
use crate::state::owners::OwnerCache;

#[derive(Debug, Default)]
pub struct VmCache {
    pub sessions: OwnerCache,
    pub baselines: BaselineCache,
    pub tool_labels: ToolLabels,
    /// The confirmation key and this VM's nonce counter.
    pub confirm: ConfirmVm,
    /// The identity digests of recent callers.
    pub digests: DigestMemo,
}
