//! Any message, measured and accounted by the memory across requests under a policy that blocks
//! everything it can (a small budget, chains, fragments), on a store that persists between runs:
//! bits, the fragment seam, chains and the record codec never panic, and the record stays within
//! its slot.
#![no_main]

use std::cell::RefCell;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mcp_warden_core::correlate::{account, key_of, measure, Call};
use mcp_warden_core::fake_host::FakeKv;
use mcp_warden_core::policy::scan::{Direction, Subject};
use mcp_warden_core::policy::{load, Policy};
use mcp_warden_core::ports::Kv;

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        load(br#"{"correlation": {"slots": 64, "entropy": {"action": "block", "budget_bits": 4096, "cooldown_secs": 1}, "chains": {"action": "block"}}}"#)
            .unwrap_or_default()
    })
}

thread_local! {
    static KV: RefCell<(FakeKv, u64)> = RefCell::new((FakeKv::new(), 1_000_000));
}

fuzz_target!(|data: &[u8]| {
    let p = policy();
    let Some(sends) = measure(&p.correlation, data) else { return };
    let tool = data.first().map(|b| ["read_file", "http_post", "run_shell", "notes"][usize::from(*b) % 4]);
    KV.with(|cell| {
        let (kv, now) = &mut *cell.borrow_mut();
        *now += 250;
        let key = key_of(&format!("{:032x}", data.len() % 7));
        let subject = Subject { tool: tool.unwrap_or_default(), principal: "p", upstream: "u", direction: Direction::Request };
        let call = Call { key: &key, task: Some("t/u\0task".to_owned()), tool, annotated: 0, sends: Some(&sends), points: 1, acts: true, refused: false, now_ms: *now };
        let _ = account(&p.correlation, &p.scan, &subject, kv, &call);
        for k in kv.keys().map(str::to_owned).collect::<Vec<_>>() {
            let (value, _) = kv.get(&k).ok().flatten().unwrap_or_default();
            assert!(value.len() <= 256 + 128, "a record outgrew its slot: {k}");
        }
    });
});
