//! The response pipeline's first inspector: a `tools/list` (or `prompts/list`,
//! `resources/list`) result with the items this principal may not see removed, marked
//! `cacheScope: "private"` because the policy varies it by principal (see [`super::lists`]).

use std::rc::Rc;

use super::compile::Policy;
use super::eval::item_visible;
use super::lists::{filter_list, ListKind};
use crate::inspect::{ExchangeView, Finding, Inspector, Rewrite};
use crate::mcp::checked::unambiguous_object;
use crate::ports::Kv;

pub struct ListFilter {
    policy: Rc<Policy>,
    kind: ListKind,
}

impl ListFilter {
    pub fn new(policy: Rc<Policy>, kind: ListKind) -> ListFilter {
        ListFilter { policy, kind }
    }
}

impl Inspector for ListFilter {
    fn name(&self) -> &'static str {
        "lists"
    }

    /// Filtering is enforcement of the policy, not a detection: it reports a finding only for a
    /// message it cannot read with certainty (not one JSON object, or one with a duplicate key,
    /// a lone surrogate, a number beyond float64 or `__proto__`: clients could read another list
    /// than the one filtered), which must then not reach the client.
    fn inspect(&mut self, ex: &ExchangeView<'_>, message: &[u8], _state: &mut dyn Kv, findings: &mut Vec<Finding>) -> Rewrite {
        if !unambiguous_object(message) {
            findings.push(Finding::unreadable("lists", "unreadable_message"));
            return Rewrite::Keep;
        }
        let (policy, kind) = (&*self.policy, self.kind);
        let visible = |name: &str| item_visible(policy, ex.principal, ex.request.era, ex.upstream, kind, name);
        match filter_list(message, kind, &visible, true) {
            Some(body) => Rewrite::Replace(body),
            None => Rewrite::Keep,
        }
    }
}
