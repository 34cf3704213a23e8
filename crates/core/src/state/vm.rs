//! What one worker VM remembers between its streams, to spare shared-data reads: only facts that
//! cannot turn false before the VM looks again (a session binding until it is due to be
//! extended, an upstream marked as having baselines). Shared data stays the one authority.

use super::baselines::BaselinedUpstreams;
use super::owners::OwnerCache;

#[derive(Debug, Default)]
pub struct VmCache {
    pub sessions: OwnerCache,
    pub baselined: BaselinedUpstreams,
}
