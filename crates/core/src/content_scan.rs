//! The content scan under the policy: a [`crate::scan`] of one message turned into what the flow
//! acts on. [`judge`] decides one message
//! (findings, a redacted rewrite, or a block), for the request path and for [`ContentScan`], the
//! response inspector that judges every message of an answer (the JSON body, or each SSE event
//! as it passes).
//!
//! - A canary is always blocked, severity `critical`.
//! - A detector's finding follows its action (`block`, `redact`, `warn`); a suppression that
//!   covers it reports it at severity `info` and lets it pass.
//! - A redaction is checked by scanning the rewritten message again: what still needs acting on
//!   blocks it (fail closed).
//! - A message the scan cannot read (a bad escape) is blocked; one past the byte budget follows
//!   `oversize`.

use std::rc::Rc;

use crate::inspect::{Disposition, ExchangeView, Finding, Inspector, Rewrite, Severity};
use crate::policy::scan::{Direction, OversizeAction, ScanAction, ScanPolicy, Subject};
use crate::policy::Policy;
use crate::ports::{Fault, Kv};
use crate::scan::catalog::DETECTORS;
use crate::scan::phrases::FAMILIES;
use crate::scan::redact::{redact, splice, Redaction};
use crate::scan::view::View;
use crate::scan::Found;

/// The inspector name (findings' `inspector`, receipts' `layer`).
pub const NAME: &str = "content_scan";

/// What the scan decided about one message.
#[derive(Debug, Default)]
pub struct Judgement {
    pub findings: Vec<Finding>,
    /// The redacted message, when something was redacted (and nothing blocks it).
    pub rewrite: Option<Vec<u8>>,
    /// A detector whose action is `confirm` found something in what a client sends: the call
    /// waits for its user's approval (README "Confirm").
    pub confirm: Option<&'static str>,
}

impl Judgement {
    pub fn blocked(&self) -> Option<&Finding> {
        self.findings.iter().find(|f| f.disposition == Disposition::Block)
    }
}

/// Judges one message going `subject.direction`.
pub fn judge(policy: &ScanPolicy, subject: &Subject<'_>, message: &[u8]) -> Judgement {
    judge_keeping_view(policy, subject, message).0
}

/// [`judge`], handing back the message's view (when it was scanned and had one), for what reads
/// the same message next (the memory across requests): one view per message.
pub fn judge_keeping_view<'a>(policy: &ScanPolicy, subject: &Subject<'_>, message: &'a [u8]) -> (Judgement, Option<View<'a>>) {
    let mut j = Judgement::default();
    let Some(scanner) = policy.scanner.as_deref() else { return (j, None) };
    let fault = fault_of(subject.direction);
    let scan = match scanner.scan_message(message, policy.max_bytes) {
        Ok(scan) => scan,
        Err(_) => {
            j.findings.push(finding("unreadable_message", Severity::High, None, fault, Disposition::Block));
            return (j, None);
        }
    };
    if scan.oversize {
        j.findings.push(oversize(policy, fault));
    }
    let redactions = collect(policy, subject, &scan.hits, fault, &mut j.findings, &mut j.confirm);
    if j.blocked().is_some() || redactions.is_empty() {
        return (j, Some(scan.view));
    }
    let rewritten = redact(message, &scan.view, &redactions);
    let rescan = scanner.scan_message(&rewritten, policy.max_bytes).ok().map(|r| r.hits);
    accept_rewrite(policy, subject, fault, rewritten, rescan.as_deref(), &mut j);
    (j, Some(scan.view))
}

/// Judges a body that is not JSON (an upstream's error page, `text/plain` or `text/html` with a
/// non-2xx status: what an SDK hands on as the error's text): scanned as text, redacted in place.
pub fn judge_text(policy: &ScanPolicy, subject: &Subject<'_>, text: &[u8]) -> Judgement {
    let mut j = Judgement::default();
    let Some(scanner) = policy.scanner.as_deref() else { return j };
    let fault = fault_of(subject.direction);
    let (hits, cut_short) = scanner.scan_text(text, policy.max_bytes);
    if cut_short {
        j.findings.push(oversize(policy, fault));
    }
    let redactions = collect(policy, subject, &hits, fault, &mut j.findings, &mut j.confirm);
    if j.blocked().is_some() || redactions.is_empty() {
        return j;
    }
    let rewritten = splice(text, 0, &redactions.iter().collect::<Vec<_>>());
    let (rescan, _) = scanner.scan_text(&rewritten, policy.max_bytes);
    accept_rewrite(policy, subject, fault, rewritten, Some(&rescan), &mut j);
    j
}

/// The secrets in `text` that cross `seam` (a byte offset): values sent in pieces, joined back
/// (the tail of earlier sends, then this request's). Only detectors and canaries the policy acts
/// on (block or redact, not suppressed) count; what lies wholly on one side was judged when it
/// was sent. The first such finding, severity `critical`, disposition `Block`.
pub fn secret_across(policy: &ScanPolicy, subject: &Subject<'_>, text: &[u8], seam: usize) -> Option<Finding> {
    let scanner = policy.scanner.as_deref()?;
    let (hits, _) = scanner.scan_text(text, policy.max_bytes);
    let crossing: Vec<crate::scan::Hit> =
        hits.into_iter().filter(|h| h.span.0 < seam && h.span.1 > seam && !matches!(h.found, Found::Injection(_))).collect();
    if crossing.is_empty() {
        return None;
    }
    let mut found = Vec::new();
    let redactions = collect(policy, subject, &crossing, fault_of(subject.direction), &mut found, &mut None);
    let acted = found
        .into_iter()
        .find(|f| f.disposition == Disposition::Block || (!redactions.is_empty() && f.severity > Severity::Info))?;
    Some(Finding { severity: Severity::Critical, disposition: Disposition::Block, ..acted })
}

/// Who is at fault for what a message going `direction` carries.
fn fault_of(direction: Direction) -> Fault {
    match direction {
        Direction::Request => Fault::Client,
        Direction::Response => Fault::Upstream,
    }
}

/// The finding of a message the byte budget did not reach the end of.
fn oversize(policy: &ScanPolicy, fault: Fault) -> Finding {
    let d = match policy.oversize {
        OversizeAction::Block => Disposition::Block,
        OversizeAction::Warn => Disposition::Report,
    };
    finding("oversize", Severity::Warning, None, fault, d)
}

/// A redaction is kept only when its rewrite, scanned again (`rescan`; `None`: unreadable), holds
/// nothing that is acted on; otherwise the message is blocked (fail closed).
fn accept_rewrite(
    policy: &ScanPolicy,
    subject: &Subject<'_>,
    fault: Fault,
    rewritten: Vec<u8>,
    rescan: Option<&[crate::scan::Hit]>,
    j: &mut Judgement,
) {
    let clean = rescan.is_some_and(|hits| {
        let mut again = Vec::new();
        collect(policy, subject, hits, fault, &mut again, &mut None).is_empty()
            && !again.iter().any(|f| f.disposition == Disposition::Block)
    });
    if clean {
        j.rewrite = Some(rewritten);
    } else {
        j.findings.push(finding("unredactable", Severity::High, None, fault, Disposition::Block));
    }
}

/// The findings of one scan's hits (one per kind found) and the redactions its actions ask for;
/// `confirm` gets the first detector whose action asks the user (in what a client sends; in what
/// comes back nobody can be asked, and `confirm` blocks).
fn collect(
    policy: &ScanPolicy,
    subject: &Subject<'_>,
    hits: &[crate::scan::Hit],
    fault: Fault,
    findings: &mut Vec<Finding>,
    confirm: &mut Option<&'static str>,
) -> Vec<Redaction> {
    let mut redactions = Vec::new();
    for hit in hits {
        let (what, class, severity, action, suppressed) = match hit.found {
            Found::Canary(_) => ("canary", Some("canary"), Severity::Critical, ScanAction::Block, false),
            Found::Detector(i) => {
                let Some(d) = DETECTORS.get(i) else { continue };
                let severity = if d.class == crate::scan::DataClass::Pii { Severity::Warning } else { Severity::High };
                (d.id, Some(d.class.as_str()), severity, policy.action(i), policy.suppressed(Some(i), subject))
            }
            Found::Injection(f) => {
                let Some(family) = FAMILIES.get(f) else { continue };
                (*family, None, Severity::Warning, policy.injection, policy.suppressed(None, subject))
            }
        };
        let action = match action {
            ScanAction::Confirm if subject.direction == Direction::Response => ScanAction::Block,
            a => a,
        };
        if action == ScanAction::Off {
            continue;
        }
        if suppressed {
            push_once(findings, finding(what, Severity::Info, class, fault, Disposition::Report));
            continue;
        }
        let disposition = if action == ScanAction::Block { Disposition::Block } else { Disposition::Report };
        let severity = if action == ScanAction::Block && severity < Severity::High { Severity::High } else { severity };
        push_once(findings, finding(what, severity, class, fault, disposition));
        if action == ScanAction::Confirm && confirm.is_none() {
            *confirm = Some(what);
        }
        if action == ScanAction::Redact {
            let whole_string = hit.decoded || matches!(hit.found, Found::Injection(_));
            let marker = match hit.found {
                Found::Injection(_) => format!("[mcp-warden: removed text with an injected instruction ({what})]"),
                _ => format!("[REDACTED:{what}]"),
            };
            redactions.push(Redaction { span: hit.span, whole_string, marker });
        }
    }
    redactions
}

fn push_once(findings: &mut Vec<Finding>, f: Finding) {
    if let Some(existing) = findings.iter_mut().find(|x| x.what == f.what) {
        if f.disposition == Disposition::Block {
            existing.disposition = Disposition::Block;
        }
        existing.severity = existing.severity.max(f.severity);
        return;
    }
    findings.push(f);
}

fn finding(
    what: &'static str,
    severity: Severity,
    data_class: Option<&'static str>,
    fault: Fault,
    disposition: Disposition,
) -> Finding {
    Finding { inspector: NAME, what, severity, data_class, fault, disposition }
}

/// The response inspector: every message of the answer, judged as it passes.
pub struct ContentScan {
    policy: Rc<Policy>,
}

impl ContentScan {
    pub fn new(policy: Rc<Policy>) -> ContentScan {
        ContentScan { policy }
    }
}

impl ContentScan {
    /// Whom an answer's findings are about.
    fn subject<'a>(ex: &'a ExchangeView<'a>) -> Subject<'a> {
        Subject {
            tool: ex.request.name.as_deref().unwrap_or_default(),
            principal: &ex.principal.id,
            upstream: ex.upstream,
            direction: Direction::Response,
        }
    }
}

/// A judgement's findings reported, its rewrite handed on.
fn hand_on(j: Judgement, findings: &mut Vec<Finding>) -> Rewrite {
    findings.extend(j.findings);
    match j.rewrite {
        Some(new) => Rewrite::Replace(new),
        None => Rewrite::Keep,
    }
}

impl Inspector for ContentScan {
    fn name(&self) -> &'static str {
        NAME
    }

    fn inspect(&mut self, ex: &ExchangeView<'_>, message: &[u8], _state: &mut dyn Kv, findings: &mut Vec<Finding>) -> Rewrite {
        hand_on(judge(&self.policy.scan, &ContentScan::subject(ex), message), findings)
    }

    fn reads_text(&self) -> bool {
        true
    }

    fn inspect_text(&mut self, ex: &ExchangeView<'_>, text: &[u8], findings: &mut Vec<Finding>) -> Rewrite {
        hand_on(judge_text(&self.policy.scan, &ContentScan::subject(ex), text), findings)
    }
}
