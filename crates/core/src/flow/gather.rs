//! Gather: what the request path reads of the stream before it decides, each read once. The
//! head at the headers callback ([`OwnedHead`]: the values classification needs, the identity
//! inputs, the header lines that must not be joined or must go), and the peer facts after the
//! routing headers are edited ([`OwnedPeer`]: each one a host call, read only when a configured
//! principal source uses it).

use crate::mcp::classify::RequestHead;
use crate::mcp::error::{RejectKind, Rejection};
use crate::mcp::headers;
use crate::ports::{HostError, HttpIo, PeerFact};
use crate::principal::{self, PeerFacts, SourceKind, Sources};

/// The head values the request path needs, copied once from the host at the headers callback
/// (the body callback needs no second header-map fetch).
#[derive(Debug, Default)]
pub(super) struct OwnedHead {
    pub(super) http_method: String,
    pub(super) content_type: Option<Vec<u8>>,
    pub(super) content_encoding: Option<Vec<u8>>,
    pub(super) protocol_version: Option<Vec<u8>>,
    pub(super) mcp_method: Option<Vec<u8>>,
    pub(super) mcp_name: Option<Vec<u8>>,
    pub(super) session_id: Option<Vec<u8>>,
    pub(super) content_length: Option<u64>,
    // Identity inputs, and the header names the client must not set (`x-warden-*`, underscored
    // twins of the routing headers).
    pub(super) authority: Option<Vec<u8>>,
    pub(super) user_agent: Option<Vec<u8>>,
    pub(super) trusted_header: Option<Vec<u8>>,
    /// The trusted identity header arrived on more than one line: never joined into an identity.
    pub(super) trusted_header_repeated: bool,
    /// `Mcp-Session-Id` or `MCP-Protocol-Version` arrived on more than one line: the Python SDK
    /// reads the first line, the TypeScript SDKs the lines joined.
    pub(super) repeated_claim: Option<RepeatedClaim>,
    pub(super) warden_headers: Vec<String>,
    /// `Mcp-Param-*` header names (legacy requests carry none legitimately).
    pub(super) param_headers: Vec<String>,
}

/// A header the upstream reads one way and the binding another when it arrives on two lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RepeatedClaim {
    /// Two sessions: the Python SDK runs the first line's (perhaps one another principal
    /// opened) while the binding would check the lines joined.
    Session,
    /// Two versions: a routing header that disagrees with itself, as a repeated `Mcp-Name` does.
    ProtocolVersion,
}

impl RepeatedClaim {
    pub(super) fn rejection(self, id: Option<&str>) -> Rejection {
        let (kind, name) = match self {
            RepeatedClaim::Session => (RejectKind::InvalidRequest, headers::SESSION_ID),
            RepeatedClaim::ProtocolVersion => (RejectKind::HeaderMismatch, headers::PROTOCOL_VERSION),
        };
        let label = if kind == RejectKind::InvalidRequest { "Invalid Request" } else { "Header mismatch" };
        Rejection::new(kind, format!("{label}: {name} is repeated")).with_id(id)
    }
}

impl OwnedHead {
    pub(super) fn read(http: &dyn HttpIo, sources: &Sources) -> Result<OwnedHead, HostError> {
        let method = http.request_header(":method")?.unwrap_or_default();
        let mut head = OwnedHead {
            http_method: String::from_utf8_lossy(&method).into_owned(),
            content_type: http.request_header("content-type")?,
            content_encoding: http.request_header("content-encoding")?,
            protocol_version: http.request_header(headers::PROTOCOL_VERSION)?,
            mcp_method: http.request_header(headers::METHOD)?,
            mcp_name: http.request_header(headers::NAME)?,
            // Envoy's codecs trim a value's whitespace and bind_session trims the server's: one
            // normal form for both sides of the binding.
            session_id: http.request_header(headers::SESSION_ID)?.map(|v| v.trim_ascii().to_vec()),
            content_length: http
                .request_header("content-length")?
                .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse::<u64>().ok()),
            authority: http.request_header(":authority")?,
            user_agent: http.request_header("user-agent")?,
            trusted_header: match &sources.trusted_header {
                Some(h) if sources.order.contains(&SourceKind::Header) => http.request_header(h)?,
                _ => None,
            },
            trusted_header_repeated: false,
            repeated_claim: None,
            warden_headers: Vec::new(),
            param_headers: Vec::new(),
        };
        let trusted = sources.trusted_header.as_deref().filter(|_| sources.order.contains(&SourceKind::Header));
        let mut trusted_lines = 0;
        let (mut session_lines, mut version_lines) = (0, 0);
        for name in http.request_header_names()? {
            if trusted.is_some_and(|t| name.eq_ignore_ascii_case(t)) {
                trusted_lines += 1;
            }
            if name.eq_ignore_ascii_case(headers::SESSION_ID) {
                session_lines += 1;
            } else if name.eq_ignore_ascii_case(headers::PROTOCOL_VERSION) {
                version_lines += 1;
            }
            // An underscored twin of a routing header (`mcp_name`) reads as that header to a
            // backend that folds `_` into `-`: ours alone to set, so it goes like `x-warden-*`.
            if principal::is_warden_header(&name) || (name.contains('_') && headers::is_routing_header(&name)) {
                head.warden_headers.push(name);
            } else if headers::is_param_header(&name) {
                head.param_headers.push(name);
            }
        }
        head.trusted_header_repeated = trusted_lines > 1;
        head.repeated_claim = if session_lines > 1 {
            Some(RepeatedClaim::Session)
        } else if version_lines > 1 {
            Some(RepeatedClaim::ProtocolVersion)
        } else {
            None
        };
        Ok(head)
    }

    pub(super) fn view(&self) -> RequestHead<'_> {
        RequestHead {
            http_method: &self.http_method,
            content_type: self.content_type.as_deref(),
            content_encoding: self.content_encoding.as_deref(),
            protocol_version: self.protocol_version.as_deref(),
            mcp_method: self.mcp_method.as_deref(),
            mcp_name: self.mcp_name.as_deref(),
            session_id: self.session_id.as_deref(),
        }
    }
}

/// The peer facts one request needs, read from the host (owned for the length of the decision).
#[derive(Debug, Default)]
pub(super) struct OwnedPeer {
    pub(super) jwt: Option<String>,
    pub(super) uri_san: Option<String>,
    pub(super) istio: Option<String>,
    pub(super) source_address: Option<String>,
    pub(super) upstream: Option<String>,
}

impl OwnedPeer {
    /// Each lookup is a host call (~11k instructions in Envoy): only what a configured source can
    /// use is read, in the sources' order, and none after the first that names a principal
    /// (resolution stops there: `principal::resolve`). `trusted_header`: the head's.
    pub(super) fn read(http: &dyn HttpIo, sources: &Sources, trusted_header: Option<&[u8]>) -> Result<OwnedPeer, HostError> {
        let fact = |f| http.peer_fact(f, sources);
        let mut peer = OwnedPeer {
            source_address: fact(PeerFact::SourceAddress)?,
            upstream: fact(PeerFact::UpstreamCluster)?,
            ..OwnedPeer::default()
        };
        for kind in &sources.order {
            match kind {
                SourceKind::Jwt => peer.jwt = fact(PeerFact::JwtPayload)?,
                SourceKind::Spiffe => peer.uri_san = fact(PeerFact::UriSan)?,
                SourceKind::Istio => peer.istio = fact(PeerFact::IstioPrincipal)?,
                SourceKind::Header => {}
            }
            let facts = PeerFacts {
                jwt_payload: peer.jwt.as_deref().map(str::as_bytes),
                jwt_claims: None,
                uri_san: peer.uri_san.as_deref(),
                istio_principal: peer.istio.as_deref(),
                trusted_header,
                source_address: None,
                user_agent: None,
            };
            if principal::names_one(sources, *kind, &facts) {
                break;
            }
        }
        Ok(peer)
    }
}
