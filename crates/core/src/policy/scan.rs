//! The content-scan settings (`content_scan` in the plugin configuration; the spec as written is
//! [`crate::policy::spec::ContentScanSpec`]), compiled into the immutable [`ScanPolicy`] the scanner runs under (what each detector does,
//! canaries, the injected-instruction action, suppressions, the byte budget). The scanner and
//! its inspector are [`crate::scan`].
//!
//! On by default: an empty configuration blocks credentials, private keys and wallet secrets in
//! both directions, redacts personal numbers, blocks canaries and warns on injected
//! instructions. Operators turn detectors down (`detectors: {"us_ssn": "off"}`), not up.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::policy::error::{err, ConfigError};
use crate::policy::glob::{globs, Glob};
pub use crate::policy::spec::{ContentScanSpec, Direction, OversizeAction, ScanAction, SuppressionSpec, DEFAULT_MAX_SCAN_BYTES};
use crate::scan::{DataClass, Scanner, DETECTORS};

/// Largest byte budget per message an operator may ask for.
pub const MAX_SCAN_BYTES_CAP: u64 = 64 * 1024 * 1024;
/// Most canaries, shortest canary, most suppressions.
pub const MAX_CANARIES: usize = 1024;
pub const MIN_CANARY_LEN: usize = 8;
pub const MAX_SUPPRESSIONS: usize = 1024;

/// Whom a finding is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub tool: &'a str,
    pub principal: &'a str,
    pub upstream: &'a str,
    pub direction: Direction,
}

/// A compiled suppression.
#[derive(Debug, Clone)]
pub struct Suppression {
    /// Detector indexes it covers (`injection` is its own flag).
    detectors: Vec<bool>,
    injection: bool,
    tools: Vec<Glob>,
    principals: Vec<Glob>,
    upstreams: Vec<Glob>,
    direction: Option<Direction>,
}

impl Suppression {
    fn covers(&self, s: &Subject<'_>) -> bool {
        let any = |globs: &[Glob], v: &str| globs.is_empty() || globs.iter().any(|g| g.matches(v));
        self.direction.is_none_or(|d| d == s.direction)
            && any(&self.tools, s.tool)
            && any(&self.principals, s.principal)
            && any(&self.upstreams, s.upstream)
    }
}

/// The compiled settings.
#[derive(Debug, Clone)]
pub struct ScanPolicy {
    /// `None`: nothing is scanned.
    pub scanner: Option<Arc<Scanner>>,
    pub requests: bool,
    pub responses: bool,
    /// Action per detector, by index into [`DETECTORS`].
    pub actions: Vec<ScanAction>,
    pub injection: ScanAction,
    pub suppressions: Vec<Suppression>,
    pub max_bytes: usize,
    pub oversize: OversizeAction,
}

impl ScanPolicy {
    /// Nothing scanned.
    pub fn off() -> ScanPolicy {
        ScanPolicy {
            scanner: None,
            requests: false,
            responses: false,
            actions: Vec::new(),
            injection: ScanAction::Off,
            suppressions: Vec::new(),
            max_bytes: 0,
            oversize: OversizeAction::Block,
        }
    }

    /// True when messages going `direction` are scanned.
    pub fn scans(&self, direction: Direction) -> bool {
        self.scanner.is_some()
            && match direction {
                Direction::Request => self.requests,
                Direction::Response => self.responses,
            }
    }

    /// True when no detector is switched off: a scan that found nothing then means there is
    /// nothing any detector would find.
    pub fn looks_for_every_detector(&self) -> bool {
        self.actions.iter().all(|a| *a != ScanAction::Off)
    }

    /// The action for the detector at `index`.
    pub fn action(&self, index: usize) -> ScanAction {
        self.actions.get(index).copied().unwrap_or(ScanAction::Off)
    }

    /// True when a suppression lets the detector at `index` (or, `None`, an injected
    /// instruction) through for `subject`.
    pub fn suppressed(&self, index: Option<usize>, subject: &Subject<'_>) -> bool {
        self.suppressions.iter().any(|s| {
            let listed = match index {
                Some(i) => s.detectors.get(i).copied().unwrap_or(false),
                None => s.injection,
            };
            listed && s.covers(subject)
        })
    }
}

/// The default action of a class.
fn class_default(class: DataClass) -> ScanAction {
    match class {
        DataClass::Pii => ScanAction::Redact,
        _ => ScanAction::Block,
    }
}

/// Compiles `content_scan`.
pub fn compile(spec: &ContentScanSpec) -> Result<ScanPolicy, ConfigError> {
    if !spec.enabled {
        return Ok(ScanPolicy::off());
    }
    let mut class_actions: BTreeMap<DataClass, ScanAction> = DataClass::ALL.iter().map(|c| (*c, class_default(*c))).collect();
    for (name, action) in &spec.classes {
        let class = DataClass::parse(name).ok_or_else(|| {
            err(format!("content_scan.classes.{name}"), "is not a data class (credential, private_key, crypto_key, pii)")
        })?;
        class_actions.insert(class, *action);
    }
    let mut actions: Vec<ScanAction> = DETECTORS
        .iter()
        .map(|d| {
            let class = class_actions.get(&d.class).copied().unwrap_or(ScanAction::Block);
            // A mild detector reports unless its class was turned down below warning.
            if d.mild && matches!(class, ScanAction::Block | ScanAction::Redact | ScanAction::Confirm) {
                ScanAction::Warn
            } else {
                class
            }
        })
        .collect();
    for (id, action) in &spec.detectors {
        let (i, _) = crate::scan::catalog::by_id(id)
            .ok_or_else(|| err(format!("content_scan.detectors.{id}"), "is not a detector id (README, \"Content scanning\")"))?;
        if let Some(a) = actions.get_mut(i) {
            *a = *action;
        }
    }
    if spec.canaries.len() > MAX_CANARIES {
        return Err(err("content_scan.canaries", format!("at most {MAX_CANARIES}")));
    }
    for (i, c) in spec.canaries.iter().enumerate() {
        if c.len() < MIN_CANARY_LEN || c.len() > 256 || c.chars().any(char::is_control) {
            return Err(err(
                format!("content_scan.canaries[{i}]"),
                format!("must be {MIN_CANARY_LEN} to 256 bytes without control characters"),
            ));
        }
    }
    if spec.suppressions.len() > MAX_SUPPRESSIONS {
        return Err(err("content_scan.suppressions", format!("at most {MAX_SUPPRESSIONS}")));
    }
    let suppressions = spec.suppressions.iter().enumerate().map(|(i, s)| compile_suppression(i, s)).collect::<Result<_, _>>()?;
    if spec.max_scan_bytes == 0 || spec.max_scan_bytes > MAX_SCAN_BYTES_CAP {
        return Err(err("content_scan.max_scan_bytes", format!("must be between 1 and {MAX_SCAN_BYTES_CAP}")));
    }
    let scanner = Scanner::new(&spec.canaries).map_err(|e| err("content_scan.canaries", e))?;
    Ok(ScanPolicy {
        scanner: Some(Arc::new(scanner)),
        requests: spec.directions.contains(&Direction::Request),
        responses: spec.directions.contains(&Direction::Response),
        actions,
        injection: spec.injection,
        suppressions,
        max_bytes: usize::try_from(spec.max_scan_bytes).unwrap_or(usize::MAX),
        oversize: spec.oversize,
    })
}

fn compile_suppression(i: usize, s: &SuppressionSpec) -> Result<Suppression, ConfigError> {
    let at = format!("content_scan.suppressions[{i}]");
    if s.detectors.is_empty() {
        return Err(err(format!("{at}.detectors"), "must name at least one detector, data class, `injection` or `*`"));
    }
    let mut detectors = vec![false; DETECTORS.len()];
    let mut injection = false;
    for (j, name) in s.detectors.iter().enumerate() {
        match name.as_str() {
            "*" => {
                detectors.iter_mut().for_each(|d| *d = true);
                injection = true;
            }
            "injection" => injection = true,
            "canary" => return Err(err(format!("{at}.detectors[{j}]"), "canaries are never suppressed")),
            other => {
                if let Some(class) = DataClass::parse(other) {
                    for (k, d) in DETECTORS.iter().enumerate() {
                        if d.class == class {
                            if let Some(x) = detectors.get_mut(k) {
                                *x = true;
                            }
                        }
                    }
                } else if let Some((k, _)) = crate::scan::catalog::by_id(other) {
                    if let Some(x) = detectors.get_mut(k) {
                        *x = true;
                    }
                } else {
                    return Err(err(
                        format!("{at}.detectors[{j}]"),
                        format!("`{other}` is not a detector id, a data class or `injection`"),
                    ));
                }
            }
        }
    }
    let globs = |list: &[String], field: &str| globs(list, &format!("{at}.{field}"));
    Ok(Suppression {
        detectors,
        injection,
        tools: globs(&s.tools, "tools")?,
        principals: globs(&s.principals, "principals")?,
        upstreams: globs(&s.upstreams, "upstreams")?,
        direction: s.direction,
    })
}
