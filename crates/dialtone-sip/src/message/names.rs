//! Mapping between header names and rsip's `Header` variants: which
//! variant a parsed header becomes ([`other_header`], rsip's own list of
//! untyped headers, case-insensitive) and the canonical name and value of
//! any variant ([`name_value`]), used by serialization, response building
//! and lookups by name.

use rsip::headers::{self as h, UntypedHeader};
use rsip::Header;

/// The rsip variant for a header rsip knows, else `Header::Other`.
pub(crate) fn other_header(name: &str, value: String) -> Header {
    let mut buf = [0u8; 24];
    let Some(lower) = buf.get_mut(..name.len()) else {
        return Header::Other(name.to_string(), value);
    };
    for (d, s) in lower.iter_mut().zip(name.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    macro_rules! untyped {
        ($($lit:literal => $variant:ident),* $(,)?) => {
            match &*lower {
                $($lit => Header::$variant(h::$variant::new(value)),)*
                _ => Header::Other(name.to_string(), value),
            }
        };
    }
    untyped! {
        b"accept" => Accept,
        b"accept-encoding" => AcceptEncoding,
        b"accept-language" => AcceptLanguage,
        b"alert-info" => AlertInfo,
        b"allow" => Allow,
        b"authentication-info" => AuthenticationInfo,
        b"authorization" => Authorization,
        b"call-info" => CallInfo,
        b"content-disposition" => ContentDisposition,
        b"content-encoding" => ContentEncoding,
        b"content-language" => ContentLanguage,
        b"date" => Date,
        b"error-info" => ErrorInfo,
        b"event" => Event,
        b"in-reply-to" => InReplyTo,
        b"mime-version" => MimeVersion,
        b"min-expires" => MinExpires,
        b"organization" => Organization,
        b"priority" => Priority,
        b"proxy-authenticate" => ProxyAuthenticate,
        b"proxy-authorization" => ProxyAuthorization,
        b"proxy-require" => ProxyRequire,
        b"record-route" => RecordRoute,
        b"reply-to" => ReplyTo,
        b"require" => Require,
        b"retry-after" => RetryAfter,
        b"route" => Route,
        b"server" => Server,
        b"subject" => Subject,
        b"subscription-state" => SubscriptionState,
        b"supported" => Supported,
        b"timestamp" => Timestamp,
        b"unsupported" => Unsupported,
        b"user-agent" => UserAgent,
        b"warning" => Warning,
        b"www-authenticate" => WwwAuthenticate,
    }
}

/// The header's name and value as strings, whatever its variant.
pub(crate) fn name_value(header: &Header) -> (&str, &str) {
    macro_rules! nv {
        ($($variant:ident => $name:literal),* $(,)?) => {
            match header {
                Header::Other(n, v) => (n.as_str(), v.as_str()),
                $(Header::$variant(x) => ($name, x.value()),)*
            }
        };
    }
    nv! {
        Accept => "Accept", AcceptEncoding => "Accept-Encoding",
        AcceptLanguage => "Accept-Language", AlertInfo => "Alert-Info", Allow => "Allow",
        AuthenticationInfo => "Authentication-Info", Authorization => "Authorization",
        CSeq => "CSeq", CallId => "Call-ID", CallInfo => "Call-Info", Contact => "Contact",
        ContentDisposition => "Content-Disposition", ContentEncoding => "Content-Encoding",
        ContentLanguage => "Content-Language", ContentLength => "Content-Length",
        ContentType => "Content-Type", Date => "Date", ErrorInfo => "Error-Info",
        Event => "Event", Expires => "Expires", From => "From", InReplyTo => "In-Reply-To",
        MaxForwards => "Max-Forwards", MimeVersion => "MIME-Version",
        MinExpires => "Min-Expires", Organization => "Organization", Priority => "Priority",
        ProxyAuthenticate => "Proxy-Authenticate", ProxyAuthorization => "Proxy-Authorization",
        ProxyRequire => "Proxy-Require", RecordRoute => "Record-Route", ReplyTo => "Reply-To",
        Require => "Require", RetryAfter => "Retry-After", Route => "Route", Server => "Server",
        Subject => "Subject", SubscriptionState => "Subscription-State",
        Supported => "Supported", Timestamp => "Timestamp", To => "To",
        Unsupported => "Unsupported", UserAgent => "User-Agent", Via => "Via",
        Warning => "Warning", WwwAuthenticate => "WWW-Authenticate",
    }
}
