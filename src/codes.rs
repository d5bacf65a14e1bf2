//! The `ricochet.*` error table: the 27 codes of ricochet.js 0.3.x with their byte-exact texts
//! (they travel on the wire inside reply bodies), plus the codes this implementation adds.
//!
//! This is the single source of truth: the JS `errorCodes` export is built from [`ALL`], and a
//! jest test checks the two agree.

/// One error code: the name without the `ricochet.` prefix and its fixed message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// Name without prefix, e.g. `auth_authkey`.
    pub name: &'static str,
    /// Fixed message text (spelling kept from the original, e.g. "inaccesible").
    pub text: &'static str,
}

impl Code {
    /// The full wire code, e.g. `ricochet.auth_authkey`.
    pub fn full(&self) -> String {
        format!("ricochet.{}", self.name)
    }
}

macro_rules! codes {
    ($($ident:ident = $name:literal, $text:literal;)*) => {
        $(
            #[doc = concat!("`ricochet.", $name, "`: ", $text)]
            pub const $ident: Code = Code { name: $name, text: $text };
        )*
        /// Every code, original ones first.
        pub const ALL: &[Code] = &[$($ident),*];
    };
}

codes! {
    AUTH_AUTHKEY = "auth_authkey", "Client provided invalid authkey.";
    AUTH_CHANNEL = "auth_channel", "Channel is already occupied by another client.";
    AUTH_EXPIREDKEY = "auth_expiredkey", "Client provided expired authkey.";
    AUTH_FAILURE = "auth_failure", "Client failed to authenticate with server.";
    AUTH_IP = "auth_ip", "Client failed to match expected IP.";
    AUTH_LOOKUP = "auth_lookup", "Authentication callback failed to provide required schema.";
    AUTH_MALFORMED = "auth_malformed", "Malformed authentication request.";
    AUTH_NOGROUPS = "auth_nogroups", "Client tried to authenticate with invalid, or no active groups.";
    AUTH_TIMEOUT = "auth_timeout", "Client did not respond with authentication request in time.";
    CLIENT_AUTH = "client_auth", "Client is not authorised.";
    CLIENT_CONNECTED = "client_connected", "Can not connect. Client already connected.";
    CLIENT_CONNECTION = "client_connection", "Can not send message, client not yet connected.";
    CLIENT_SEND = "client_send", "Failed to send network message.";
    MESSAGE_AUTH = "message_auth", "Client unauthenticated and unable to receive message.";
    MESSAGE_BADJSON = "message_badjson", "Message does not contain valid JSON syntax.";
    MESSAGE_CHANNEL = "message_channel", "Message is addressed to another channel.";
    MESSAGE_DECRYPT = "message_decrypt", "Message failed to decrypt.";
    MESSAGE_GROUP = "message_group", "Message is sent from another, inaccesible group.";
    MESSAGE_MALFORMED = "message_malformed", "Malformed message received.";
    MESSAGE_NOCLIENT = "message_noclient", "Client could not be found by given id.";
    MESSAGE_NOTFOUND = "message_notfound", "No message found with given id.";
    MESSAGE_NOTHANDLED = "message_nothandled", "Failed to receive message, no listeners found.";
    MESSAGE_NORECIPIENT = "message_norecipient", "No recipient found by given id.";
    MESSAGE_SELF = "message_self", "Client attempted to send message to itself.";
    MESSAGE_TIMEOUT = "message_timeout", "Request timed out.";
    SERVER_INUSE = "server_inuse", "Server is already listening.";
    SERVER_NOCALLBACK = "server_nocallback", "No `authCallback` callback method set.";
    // Added by this implementation.
    MESSAGE_TOOLARGE = "message_toolarge", "Message exceeds the maximum message size.";
    CLIENT_SLOW = "client_slow", "Client is not reading its messages fast enough.";
    CLIENT_DISCONNECTED = "client_disconnected", "Connection to the server was lost.";
    CLIENT_QUEUEFULL = "client_queuefull", "Send queue is full.";
    SERVER_CLOSED = "server_closed", "Server is closed.";
    SERVER_MAXCONNECTIONS = "server_maxconnections", "Server has reached its connection limit.";
    AUTH_RATELIMIT = "auth_ratelimit", "Too many failed authentication attempts from this address.";
    REQUEST_FAILED = "request_failed", "Responder answered the request with an error.";
    REQUEST_ABORTED = "request_aborted", "Request was aborted.";
}

/// Number of codes inherited from ricochet.js 0.3.x (they come first in [`ALL`]).
pub const ORIGINAL_COUNT: usize = 27;

/// Finds a code by name, with or without the `ricochet.` prefix.
pub fn lookup(name: &str) -> Option<Code> {
    let bare = name.strip_prefix("ricochet.").unwrap_or(name);
    ALL.iter().copied().find(|c| c.name == bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_table_has_27_codes_with_exact_texts() {
        assert_eq!(ALL[..ORIGINAL_COUNT].len(), 27);
        assert_eq!(
            MESSAGE_GROUP.text,
            "Message is sent from another, inaccesible group."
        );
        assert!(ALL[ORIGINAL_COUNT..].iter().all(|c| !c.name.is_empty()));
    }

    #[test]
    fn lookup_accepts_codes_with_and_without_prefix() {
        assert_eq!(lookup("message_norecipient"), Some(MESSAGE_NORECIPIENT));
        assert_eq!(lookup("ricochet.message_group"), Some(MESSAGE_GROUP));
        assert_eq!(lookup("bogus"), None);
    }
}
