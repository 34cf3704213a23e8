//! The upstream's own rounds after an approval: an `input_required` answer from the upstream
//! gets the gateway's approved state in front of its own (`<ours>~<theirs>`, or ours alone when
//! it sent none), so the client's next retry still carries the approval and the gateway hands
//! the upstream its state back unchanged ([`super::seal::split`]). Everything else passes as it
//! is; an `input_required` answer that cannot be read is withheld (fail closed).

use crate::inspect::{may_mention, ExchangeView, Finding, Inspector, Rewrite};
use crate::mcp::checked::unambiguous_object;
use crate::ports::Kv;

use super::edit;
use super::seal::{ConfirmKey, State};

/// The approval an answer's `input_required` carries: sealed when the answer is seen, living
/// `ttl_ms` from then (the user answers the upstream's question from then on), bound to the
/// upstream's state it wraps (so a retry cannot swap or drop that state and restart the call
/// under the same approval).
#[derive(Debug)]
pub struct CarryApproval {
    key: ConfirmKey,
    approved: State,
    ttl_ms: u64,
}

impl CarryApproval {
    pub fn new(key: ConfirmKey, approved: State, ttl_ms: u64) -> CarryApproval {
        CarryApproval { key, approved, ttl_ms }
    }

    fn token(&self, theirs: Option<&str>, now_ms: u64) -> String {
        let approved = State {
            binding: self.approved.binding.carrying(theirs),
            expires_ms: now_ms.saturating_add(self.ttl_ms),
            ..self.approved.clone()
        };
        approved.seal(&self.key)
    }

    /// `message` with the state carried, `None` when it is no `input_required` result, `Err`
    /// when it may be one and cannot be read.
    fn carried(&self, message: &[u8], now_ms: u64) -> Result<Option<Vec<u8>>, ()> {
        if !unambiguous_object(message) {
            return Err(());
        }
        let top = edit::members(message, edit::whole(message)).ok_or(())?;
        let Some(result) = edit::find(&top, "result").map(|m| m.value) else { return Ok(None) };
        let Some(members) = edit::members(message, result) else { return Ok(None) };
        let is_input_required = edit::find(&members, "resultType")
            .and_then(|m| edit::string_at(message, m.value))
            .is_some_and(|t| t == "input_required");
        if !is_input_required {
            return Ok(None);
        }
        let e = match edit::find(&members, "requestState") {
            Some(m) => {
                let theirs = edit::string_at(message, m.value).ok_or(())?;
                edit::replace(m.value, edit::json_string(&super::seal::join(&self.token(Some(&theirs), now_ms), Some(&theirs))))
            }
            None => edit::insert_first(result, &members, "requestState", &edit::json_string(&self.token(None, now_ms))),
        };
        Ok(Some(edit::apply(message, vec![e])))
    }
}

impl Inspector for CarryApproval {
    fn name(&self) -> &'static str {
        super::INSPECTOR
    }

    fn inspect(&mut self, exchange: &ExchangeView<'_>, message: &[u8], _: &mut dyn Kv, findings: &mut Vec<Finding>) -> Rewrite {
        if !may_mention(message, b"input_required") {
            return Rewrite::Keep;
        }
        match self.carried(message, exchange.now_ms) {
            Ok(Some(new)) => Rewrite::Replace(new),
            Ok(None) => Rewrite::Keep,
            Err(()) => {
                findings.push(Finding::unreadable(super::INSPECTOR, "unreadable_message"));
                Rewrite::Keep
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::confirm::seal::{split, Binding, Kind};

    fn approval() -> CarryApproval {
        let binding = Binding::new(("p", "c"), ("u", "tools/call", "t"), b"{}", "r");
        CarryApproval::new(ConfirmKey::new([5; 32]), State { kind: Kind::Approved, expires_ms: 9, nonce: [1; 16], binding }, 1000)
    }

    fn carry(m: &str) -> Result<Option<String>, ()> {
        approval().carried(m.as_bytes(), 5000).map(|o| o.map(|b| String::from_utf8(b).unwrap()))
    }

    #[test]
    fn the_upstreams_state_is_carried_behind_ours_byte_for_byte() {
        let m = r#"{"jsonrpc":"2.0","id":3,"result":{"resultType":"input_required","inputRequests":{},"requestState":"v1.x~y"}}"#;
        let out = carry(m).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let state = v["result"]["requestState"].as_str().unwrap();
        let (ours, theirs) = split(state, Some(ConfirmKey::new([5; 32]).prefix()));
        assert_eq!(theirs, Some("v1.x~y"));
        assert_eq!(out, m.replace(r#""v1.x~y""#, &format!("\"{}~v1.x~y\"", ours.unwrap())));
        // Ours is bound to theirs.
        let st = State::open(ours.unwrap(), &ConfirmKey::new([5; 32])).unwrap();
        assert_eq!(st.binding.carried, crate::confirm::seal::carried(Some("v1.x~y")));
        assert_eq!(st.expires_ms, 6000, "it lives from when the upstream asked");
        let escaped = r#"{"id":3,"result":{"resultType":"input\u005frequired","inputRequests":{}}}"#;
        let out: serde_json::Value = serde_json::from_str(&carry(escaped).unwrap().unwrap()).unwrap();
        assert!(out["result"]["requestState"].as_str().unwrap().starts_with("mcpw1."));
    }

    #[test]
    fn other_answers_pass_and_unreadable_ones_fail_closed() {
        assert_eq!(
            carry(r#"{"id":3,"result":{"resultType":"complete","content":[{"type":"text","text":"input_required"}]}}"#),
            Ok(None)
        );
        assert_eq!(carry(r#"{"id":3,"error":{"code":1,"message":"input_required"}}"#), Ok(None));
        assert_eq!(carry(r#"{"id":3,"result":{"resultType":"input_required","resultType":"complete"}}"#), Err(()));
        assert_eq!(carry(r#"{"id":3,"result":{"resultType":"input_required","requestState":7}}"#), Err(()));
    }
}
