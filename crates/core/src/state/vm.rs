//! What one worker VM remembers between its streams, to spare shared-data reads: facts that
//! cannot turn false before the VM looks again (a session binding until it is due to be
//! extended, an upstream marked as having baselines), and, only when the policy allows it
//! (`tool_integrity.baseline_cache_ms`), baselines read a moment ago. Shared data stays the one
//! authority. Also the tool names its metrics may carry as labels (bounded per VM).

use super::baselines::{BaselinedUpstreams, RecentBaselines};
use super::owners::OwnerCache;

#[derive(Debug, Default)]
pub struct VmCache {
    pub sessions: OwnerCache,
    pub baselined: BaselinedUpstreams,
    pub recent: RecentBaselines,
    pub tool_labels: crate::metrics::ToolLabels,
    /// The confirmation key and this VM's nonce counter.
    pub confirm: crate::confirm::ConfirmVm,
}
