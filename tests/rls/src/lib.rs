//! The wire types of Envoy's global rate limit service, written by hand for prost (no protoc):
//! `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`.
//!
//! Field numbers follow envoy's `api/envoy/service/ratelimit/v3/rls.proto` and
//! `api/envoy/extensions/common/ratelimit/v3/ratelimit.proto`. Only what this test peer reads or
//! writes is declared; prost skips unknown fields, so a newer peer's extra fields are harmless.

/// The gRPC path of the one RPC.
pub const SHOULD_RATE_LIMIT_PATH: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";
/// The gRPC service name.
pub const SERVICE_NAME: &str = "envoy.service.ratelimit.v3.RateLimitService";

/// `envoy.service.ratelimit.v3.RateLimitRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitRequest {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(message, repeated, tag = "2")]
    pub descriptors: Vec<RateLimitDescriptor>,
    /// 0 (unset) means 1.
    #[prost(uint32, tag = "3")]
    pub hits_addend: u32,
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitDescriptor {
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
    /// Decoded but ignored: the limits file is the only source of limits.
    #[prost(message, optional, tag = "2")]
    pub limit: Option<RateLimitOverride>,
    /// Overrides the request's `hits_addend` for this descriptor when present.
    #[prost(message, optional, tag = "3")]
    pub hits_addend: Option<UInt64Value>,
}

/// `RateLimitDescriptor.Entry`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `RateLimitDescriptor.RateLimitOverride` (`unit` is `envoy.type.v3.RateLimitUnit`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitOverride {
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    #[prost(int32, tag = "2")]
    pub unit: i32,
}

/// `google.protobuf.UInt64Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UInt64Value {
    #[prost(uint64, tag = "1")]
    pub value: u64,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse` (headers, body, metadata and quota omitted).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitResponse {
    #[prost(enumeration = "Code", tag = "1")]
    pub overall_code: i32,
    /// One per request descriptor, in order.
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<DescriptorStatus>,
}

/// `RateLimitResponse.Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Code {
    Unknown = 0,
    Ok = 1,
    OverLimit = 2,
}

impl Code {
    pub fn name(self) -> &'static str {
        match self {
            Code::Unknown => "UNKNOWN",
            Code::Ok => "OK",
            Code::OverLimit => "OVER_LIMIT",
        }
    }
}

/// `RateLimitResponse.DescriptorStatus` (quota omitted).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DescriptorStatus {
    #[prost(enumeration = "Code", tag = "1")]
    pub code: i32,
    #[prost(message, optional, tag = "2")]
    pub current_limit: Option<RateLimit>,
    #[prost(uint32, tag = "3")]
    pub limit_remaining: u32,
    #[prost(message, optional, tag = "4")]
    pub duration_until_reset: Option<Duration>,
}

/// `RateLimitResponse.RateLimit`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimit {
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    #[prost(enumeration = "Unit", tag = "2")]
    pub unit: i32,
}

/// `RateLimitResponse.RateLimit.Unit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Unit {
    Unknown = 0,
    Second = 1,
    Minute = 2,
    Hour = 3,
    Day = 4,
    Month = 5,
    Year = 6,
    Week = 7,
}

impl Unit {
    /// The unit a window of `seconds` is exactly one of, else `Unknown`.
    pub fn of_window(seconds: u64) -> Unit {
        match seconds {
            1 => Unit::Second,
            60 => Unit::Minute,
            3600 => Unit::Hour,
            86_400 => Unit::Day,
            604_800 => Unit::Week,
            _ => Unit::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Unit::Unknown => "UNKNOWN",
            Unit::Second => "SECOND",
            Unit::Minute => "MINUTE",
            Unit::Hour => "HOUR",
            Unit::Day => "DAY",
            Unit::Month => "MONTH",
            Unit::Year => "YEAR",
            Unit::Week => "WEEK",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Bytes as envoy's generated C++ would write them, built by hand from the .proto numbers.
    #[test]
    fn request_field_numbers() {
        // domain=1 "d"; descriptors=2 { entries=1 { key=1 "k", value=2 "v" }, hits_addend=3 { value=1 5 } };
        // hits_addend=3 7
        let bytes = [
            0x0a, 1, b'd', // domain
            0x12, 12, // descriptor, 12 bytes
            0x0a, 6, 0x0a, 1, b'k', 0x12, 1, b'v', // entry
            0x1a, 2, 0x08, 5, // hits_addend wrapper
            0x18, 7, // request hits_addend
        ];
        let req = RateLimitRequest::decode(&bytes[..]).unwrap();
        assert_eq!(req.domain, "d");
        assert_eq!(req.hits_addend, 7);
        let d = &req.descriptors[0];
        assert_eq!((d.entries[0].key.as_str(), d.entries[0].value.as_str()), ("k", "v"));
        assert_eq!(d.hits_addend, Some(UInt64Value { value: 5 }));
    }

    #[test]
    fn response_field_numbers() {
        let resp = RateLimitResponse {
            overall_code: Code::OverLimit as i32,
            statuses: vec![DescriptorStatus {
                code: Code::OverLimit as i32,
                current_limit: Some(RateLimit { name: String::new(), requests_per_unit: 3, unit: Unit::Minute as i32 }),
                limit_remaining: 0,
                duration_until_reset: Some(Duration { seconds: 9, nanos: 0 }),
            }],
        };
        let bytes = resp.encode_to_vec();
        // overall_code=1 2; statuses=2 { code=1 2, current_limit=2 { rpu=1 3, unit=2 2 }, reset=4 { seconds=1 9 } }
        assert_eq!(bytes, [0x08, 2, 0x12, 12, 0x08, 2, 0x12, 4, 0x08, 3, 0x10, 2, 0x22, 2, 0x08, 9]);
    }
}
