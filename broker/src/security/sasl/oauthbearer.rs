//! SASL/OAUTHBEARER (RFC 7628), as Kafka's `OAuthBearerSaslServer` with the validator
//! Kafka uses when no `sasl.server.callback.handler.class` is set: the unsecured-JWS one
//! (`OAuthBearerUnsecuredValidatorCallbackHandler`), meant for development.
//!
//! The client's first message is `n,[a=<authzid>],\x01auth=Bearer <token>\x01[key=value\x01]*\x01`
//! (`OAuthBearerClientInitialResponse`). A token the validator refuses is not a failure at
//! once: the server answers RFC 7628's JSON error (`{"status":"invalid_token"}`) and the
//! client ends the exchange with a single `\x01`, which then fails with that JSON as the
//! message. A malformed first message fails at once with Kafka's generic message.
//!
//! The token is a JWS compact serialization `header.claims.` with `"alg":"none"` and no
//! signature; its principal claim (`sub` or `unsecuredValidatorPrincipalClaimName`) is the
//! principal, its `exp` (required) bounds the session (KIP-368), `iat` (optional) must not
//! be in the future, and `unsecuredValidatorRequiredScope` names scopes the token's scope
//! claim (`scope` or `unsecuredValidatorScopeClaimName`) must hold, all with
//! `unsecuredValidatorAllowableClockSkewMs` of tolerance.

use std::collections::BTreeMap;

use base64::Engine;

use super::{SaslFailure, SaslServer, Step};
use crate::security::KafkaPrincipal;

/// Kafka's `OAuthBearerLoginModule` class, whose JAAS entry carries the validator's options.
pub const LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// The client's message after an error challenge (`OAuthBearerSaslClient.BYTE_CONTROL_A`).
const CONTROL_A: u8 = 0x01;

/// What a SaslException from Kafka's server tells the client (`SaslServerAuthenticator`
/// does not pass the exception's own message on).
const GENERIC_FAILURE: &str = "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER";

/// The options of `OAuthBearerUnsecuredValidatorCallbackHandler`, from the listener's
/// `oauthbearer.sasl.jaas.config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsecuredValidatorOptions {
    /// `unsecuredValidatorPrincipalClaimName`, default `sub`.
    pub principal_claim: String,
    /// `unsecuredValidatorScopeClaimName`, default `scope`.
    pub scope_claim: String,
    /// `unsecuredValidatorRequiredScope`, space-delimited; empty by default.
    pub required_scope: Vec<String>,
    /// `unsecuredValidatorAllowableClockSkewMs`, default 0.
    pub clock_skew_ms: i64,
}

impl Default for UnsecuredValidatorOptions {
    fn default() -> UnsecuredValidatorOptions {
        UnsecuredValidatorOptions {
            principal_claim: "sub".to_string(),
            scope_claim: "scope".to_string(),
            required_scope: Vec::new(),
            clock_skew_ms: 0,
        }
    }
}

impl UnsecuredValidatorOptions {
    /// The options of a JAAS entry; an error names the option. Kafka finds a bad skew or
    /// scope only when a client authenticates; here the broker refuses to start.
    pub fn from_options(options: &[(String, String)]) -> Result<UnsecuredValidatorOptions, String> {
        let get = |key: &str| {
            options
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let mut out = UnsecuredValidatorOptions::default();
        if let Some(name) = get("unsecuredValidatorPrincipalClaimName") {
            out.principal_claim = name.to_string();
        }
        if let Some(name) = get("unsecuredValidatorScopeClaimName") {
            out.scope_claim = name.to_string();
        }
        if let Some(scope) = get("unsecuredValidatorRequiredScope") {
            // OAuthBearerScopeUtils.parseScope: items of %x21 / %x23-5B / %x5D-7E.
            for item in scope.split(' ').filter(|s| !s.is_empty()) {
                if !item.bytes().all(is_scope_char) {
                    return Err(format!(
                        "unsecuredValidatorRequiredScope: invalid scope value: {item}"
                    ));
                }
                out.required_scope.push(item.to_string());
            }
        }
        if let Some(skew) = get("unsecuredValidatorAllowableClockSkewMs") {
            out.clock_skew_ms = skew.parse::<i32>().map(i64::from).map_err(|_| {
                format!("unsecuredValidatorAllowableClockSkewMs: not an integer: {skew}")
            })?;
            if out.clock_skew_ms < 0 {
                return Err(format!(
                    "unsecuredValidatorAllowableClockSkewMs: allowable clock skew millis must not be negative: {skew}"
                ));
            }
        }
        Ok(out)
    }
}

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

/// The parts of a client's first message that matter to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The authorization id (`a=`), empty if absent; as sent (`=2C`, `=3D` not decoded).
    pub authzid: String,
    /// The bearer token.
    pub token: String,
    /// The SASL extensions (every key but `auth`).
    pub extensions: BTreeMap<String, String>,
}

/// Parses a client's first message as `OAuthBearerClientInitialResponse` does; the error
/// is Kafka's exception message.
pub fn parse_client_first(message: &[u8]) -> Result<ClientFirst, String> {
    const INVALID: &str = "Invalid OAUTHBEARER client first message";
    let text = std::str::from_utf8(message).map_err(|_| INVALID.to_string())?;
    let rest = text.strip_prefix("n,").ok_or(INVALID)?;
    let (authzid, rest) = match rest.strip_prefix("a=") {
        Some(after) => {
            let end = after.find(',').ok_or(INVALID)?;
            let name = &after[..end];
            if !is_saslname(name) {
                return Err(INVALID.to_string());
            }
            (name.to_string(), &after[end..])
        }
        None => (String::new(), rest),
    };
    let rest = rest.strip_prefix(",\x01").ok_or(INVALID)?;
    // `(key=value\x01)*\x01`: the pairs, each ended by \x01, then one more \x01.
    let pairs = rest.strip_suffix('\x01').ok_or(INVALID)?;
    let mut properties = BTreeMap::new();
    if !pairs.is_empty() {
        let body = pairs.strip_suffix('\x01').ok_or(INVALID)?;
        for pair in body.split('\x01') {
            let (key, value) = pair.split_once('=').ok_or(INVALID)?;
            let key_ok = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic());
            let value_ok = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| (0x21..=0x7E).contains(&b) || b" \t\r\n".contains(&b));
            if !key_ok || !value_ok {
                return Err(INVALID.to_string());
            }
            properties.insert(key.to_string(), value.to_string());
        }
    }
    let auth = properties
        .remove("auth")
        .ok_or_else(|| format!("{INVALID}: 'auth' not specified"))?;
    // `(?<scheme>\w+)[ ]+(?<token>[-_~+/.a-zA-Z0-9]+=*)`, the whole value.
    let invalid_auth = || format!("{INVALID}: invalid 'auth' format");
    let (scheme, after) = auth.split_once(' ').ok_or_else(invalid_auth)?;
    let token = after.trim_start_matches(' ');
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let body = token.trim_end_matches('=');
    let token_ok = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_~+/.".contains(&b));
    if !scheme_ok || !token_ok {
        return Err(invalid_auth());
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!(
            "Invalid scheme in OAUTHBEARER client first message: {scheme}"
        ));
    }
    Ok(ClientFirst {
        authzid,
        token: token.to_string(),
        extensions: properties,
    })
}

/// RFC 7628's saslname: `(%x01-7F except = and ,) | =2C | =3D`, at least one.
fn is_saslname(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' => {
                if !(name[i..].starts_with("=2C") || name[i..].starts_with("=3D")) {
                    return false;
                }
                i += 3;
            }
            b',' | 0 | 0x80.. => return false,
            _ => i += 1,
        }
    }
    !bytes.is_empty()
}

/// One claim's value as Kafka's `OAuthBearerUnsecuredJws.convert` keeps it: numbers,
/// arrays (of their elements' text), and the text of anything else.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// A JSON number.
    Number(f64),
    /// A JSON array, each element as text.
    List(Vec<String>),
    /// Any other value as Jackson's `asText()` gives it (a string's content, `true`, ...).
    Text(String),
}

impl Claim {
    /// The Java class name Kafka's messages give for this value.
    fn java_type(&self) -> &'static str {
        match self {
            Claim::Number(n) if n.fract() == 0.0 && n.abs() < 2_147_483_648.0 => "Integer",
            Claim::Number(n) if n.fract() == 0.0 && n.abs() < 9.2e18 => "Long",
            Claim::Number(_) => "Double",
            Claim::List(_) => "ArrayList",
            Claim::Text(_) => "String",
        }
    }
}

/// A validated unsecured token.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsecuredToken {
    /// The principal claim's value.
    pub principal: String,
    /// `exp` in milliseconds since the epoch (`OAuthBearerToken.lifetimeMs()`).
    pub lifetime_ms: i64,
    /// `iat` in milliseconds, if present.
    pub start_time_ms: Option<i64>,
    /// The scope claim's items.
    pub scope: Vec<String>,
}

/// Why a token was refused: Kafka's `OAuthBearerValidationResult` (the message is logged,
/// the client sees only the status and scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRefused {
    /// The failure description.
    pub description: String,
    /// The required scope, for `insufficient_scope` failures.
    pub scope: Option<String>,
}

fn refused(description: impl Into<String>) -> TokenRefused {
    TokenRefused {
        description: description.into(),
        scope: None,
    }
}

/// Decodes one base64 section of a compact serialization and reads its JSON object's members.
fn section(text: &str) -> Result<BTreeMap<String, Claim>, TokenRefused> {
    // Kafka decodes with java.util.Base64's basic decoder (padding optional); RFC 7515 and
    // librdkafka use the URL-safe alphabet, so both alphabets are taken here.
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let bytes = engine
        .decode(standard)
        .map_err(|_| refused("malformed Base64 URL encoded value"))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| refused("malformed JSON"))?;
    let mut out = BTreeMap::new();
    if let serde_json::Value::Object(members) = value {
        for (key, value) in members {
            let claim = match value {
                serde_json::Value::Number(n) => Claim::Number(n.as_f64().unwrap_or(f64::NAN)),
                serde_json::Value::Array(items) => Claim::List(items.iter().map(as_text).collect()),
                other => Claim::Text(as_text(&other)),
            };
            out.insert(key, claim);
        }
    }
    Ok(out)
}

/// Jackson's `JsonNode.asText()`.
fn as_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Null => "null".to_string(),
        _ => String::new(),
    }
}

fn number(claims: &BTreeMap<String, Claim>, name: &str) -> Result<Option<f64>, TokenRefused> {
    match claims.get(name) {
        None => Ok(None),
        Some(Claim::Number(n)) => Ok(Some(*n)),
        Some(other) => Err(refused(format!(
            "The '{name}' claim was not of type Number: {}",
            other.java_type()
        ))),
    }
}

fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

/// Validates `token` at `now_ms` as `OAuthBearerUnsecuredValidatorCallbackHandler` does
/// (`OAuthBearerUnsecuredJws`, then `OAuthBearerValidationUtils`' checks in Kafka's order).
pub fn validate_unsecured(
    token: &str,
    options: &UnsecuredValidatorOptions,
    now_ms: i64,
) -> Result<UnsecuredToken, TokenRefused> {
    if token.contains("..") {
        return Err(refused("Malformed compact serialization contains '..'"));
    }
    let splits: Vec<&str> = token.split('.').collect();
    if splits.len() != 3 {
        return Err(refused(
            "Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values",
        ));
    }
    let header = section(splits[0])?;
    let claims = section(splits[1])?;
    let alg = match header.get("alg") {
        None => return Err(refused("JWS header must have an Algorithm value")),
        Some(Claim::Text(t)) => t.clone(),
        Some(Claim::Number(n)) => n.to_string(),
        Some(Claim::List(l)) => format!("[{}]", l.join(", ")),
    };
    if alg != "none" {
        return Err(refused("Unsecured JWS must have 'none' for an algorithm"));
    }
    if !splits[2].is_empty() {
        return Err(refused(
            "Unsecured JWS must not contain a digital signature",
        ));
    }
    let scope = match claims.get(&options.scope_claim) {
        None => Vec::new(),
        Some(Claim::Text(t)) if t.trim().is_empty() => Vec::new(),
        Some(Claim::Text(t)) => vec![t.trim().to_string()],
        Some(Claim::List(items)) => items
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_string())
            .collect(),
        Some(other) => {
            return Err(refused(format!(
                "The '{}' claim was not of type List: {}",
                options.scope_claim,
                other.java_type()
            )));
        }
    };
    let Some(exp) = number(&claims, "exp")? else {
        return Err(refused("No expiration time in JWT"));
    };
    let principal = match claims.get(&options.principal_claim) {
        Some(Claim::Text(t)) if !t.trim().is_empty() => t.clone(),
        None | Some(Claim::Text(_)) => {
            return Err(refused(format!(
                "No principal name in JWT claim: {}",
                options.principal_claim
            )));
        }
        Some(other) => {
            return Err(refused(format!(
                "The '{}' claim was not of type String: {}",
                options.principal_claim,
                other.java_type()
            )));
        }
    };
    let iat = number(&claims, "iat")?;
    let skew = options.clock_skew_ms as f64;
    if let Some(iat) = iat {
        if 1000.0 * iat > now_ms as f64 + skew {
            return Err(refused(format!(
                "The Issued At value ({iat:.6} seconds) was after the indicated time ({now_ms} ms) plus allowable clock skew ({} ms)",
                options.clock_skew_ms
            )));
        }
    }
    if now_ms as f64 - skew >= 1000.0 * exp {
        return Err(refused(format!(
            "The indicated time ({now_ms} ms) minus allowable clock skew ({} ms) was on or after the Expiration Time value ({exp:.6} seconds)",
            options.clock_skew_ms
        )));
    }
    if let Some(iat) = iat {
        if exp <= iat {
            return Err(refused(format!(
                "The Expiration Time time ({exp:.6} seconds) was not after the Issued At time ({iat:.6} seconds)"
            )));
        }
    }
    for required in &options.required_scope {
        if !scope.contains(required) {
            return Err(TokenRefused {
                description: format!(
                    "The provided scope ([{}]) was missing a required scope ({required}).  All required scope elements: [{}]",
                    scope.join(", "),
                    options.required_scope.join(", ")
                ),
                scope: Some(format!("[{}]", options.required_scope.join(", "))),
            });
        }
    }
    Ok(UnsecuredToken {
        principal,
        lifetime_ms: seconds_to_ms(exp),
        start_time_ms: iat.map(seconds_to_ms),
        scope,
    })
}

/// RFC 7628's error challenge as `OAuthBearerSaslServer.jsonErrorResponse` writes it.
pub fn json_error(refusal: &TokenRefused) -> String {
    match &refusal.scope {
        Some(scope) => format!("{{\"status\":\"insufficient_scope\", \"scope\":\"{scope}\"}}"),
        None => "{\"status\":\"invalid_token\"}".to_string(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The OAUTHBEARER server of one connection.
pub struct OAuthBearerServer {
    options: std::sync::Arc<UnsecuredValidatorOptions>,
    /// The JSON error last sent, which the client's `\x01` turns into the failure.
    error: Option<String>,
    lifetime_ms: Option<i64>,
    complete: bool,
}

impl OAuthBearerServer {
    /// A server validating tokens with `options`.
    pub fn new(options: std::sync::Arc<UnsecuredValidatorOptions>) -> OAuthBearerServer {
        OAuthBearerServer {
            options,
            error: None,
            lifetime_ms: None,
            complete: false,
        }
    }

    /// [`SaslServer::evaluate`] at `now_ms`.
    pub fn evaluate_at(&mut self, message: &[u8], now_ms: i64) -> Result<Step, SaslFailure> {
        if self.complete {
            return Err(SaslFailure(
                "Authentication exchange has completed".to_string(),
            ));
        }
        if message == [CONTROL_A] {
            if let Some(error) = self.error.take() {
                // The client acknowledged our error challenge: the exchange fails with it.
                return Err(SaslFailure(error));
            }
        }
        self.error = None;
        let first = parse_client_first(message).map_err(|e| {
            tracing::debug!("OAUTHBEARER: {e}");
            SaslFailure(GENERIC_FAILURE.to_string())
        })?;
        let token = match validate_unsecured(&first.token, &self.options, now_ms) {
            Ok(token) => token,
            Err(refusal) => {
                let json = json_error(&refusal);
                tracing::debug!("OAUTHBEARER token refused: {}", refusal.description);
                self.error = Some(json.clone());
                return Ok(Step::Continue(json.into_bytes()));
            }
        };
        if !first.authzid.is_empty() && first.authzid != token.principal {
            return Err(SaslFailure(format!(
                "Authentication failed: Client requested an authorization id ({}) that is different from the token's principal name ({})",
                first.authzid, token.principal
            )));
        }
        // The unsecured validator accepts every extension.
        self.complete = true;
        self.lifetime_ms = Some(token.lifetime_ms);
        Ok(Step::Complete {
            response: Vec::new(),
            principal: KafkaPrincipal::user(token.principal),
        })
    }
}

impl SaslServer for OAuthBearerServer {
    fn evaluate(&mut self, token: &[u8]) -> Result<Step, SaslFailure> {
        self.evaluate_at(token, now_ms())
    }

    fn credential_lifetime_ms(&self) -> Option<i64> {
        self.lifetime_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    fn token(claims: &str) -> String {
        format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(claims))
    }

    fn first(token: &str) -> Vec<u8> {
        format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
    }

    const NOW: i64 = 1_700_000_000_000;

    fn server(options: UnsecuredValidatorOptions) -> OAuthBearerServer {
        OAuthBearerServer::new(std::sync::Arc::new(options))
    }

    #[test]
    fn client_first_messages_parse_as_kafka_parses_them() {
        let parsed =
            parse_client_first(b"n,a=bob,\x01auth=Bearer abc.def.\x01ext=va lue\x01\x01").unwrap();
        assert_eq!(parsed.authzid, "bob");
        assert_eq!(parsed.token, "abc.def.");
        assert_eq!(parsed.extensions["ext"], "va lue");
        assert_eq!(
            parse_client_first(b"n,,\x01auth=bearer  x==\x01\x01")
                .unwrap()
                .token,
            "x=="
        );
        for bad in [
            &b""[..],
            b"n,,\x01\x01",
            b"n,,\x01auth=Bearer x\x01",
            b"y,,\x01auth=Bearer x\x01\x01",
            b"n,,\x01auth=Bearer x y\x01\x01",
            b"n,,\x01auth=Basic x\x01\x01",
            b"n,a=,\x01auth=Bearer x\x01\x01",
            b"n,a=b=2X,\x01auth=Bearer x\x01\x01",
            b"n,,\x01k1=v\x01auth=Bearer x\x01\x01",
            b"n,,\x01auth=Bearer \xff\x01\x01",
        ] {
            assert!(parse_client_first(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_client_first(b"n,,\x01k=v\x01\x01").unwrap_err(),
            "Invalid OAUTHBEARER client first message: 'auth' not specified"
        );
    }

    #[test]
    fn a_valid_token_authenticates_its_subject_with_its_lifetime() {
        let mut s = server(UnsecuredValidatorOptions::default());
        let t = token(r#"{"sub":"alice","iat":1699999999.5,"exp":1700000060}"#);
        let step = s.evaluate_at(&first(&t), NOW).unwrap();
        assert_eq!(
            step,
            Step::Complete {
                response: vec![],
                principal: KafkaPrincipal::user("alice")
            }
        );
        assert_eq!(s.credential_lifetime_ms(), Some(1_700_000_060_000));
    }

    #[test]
    fn a_refused_token_gets_the_json_challenge_then_fails_on_control_a() {
        let cases = [
            r#"{"sub":"alice"}"#,                                   // no exp
            r#"{"exp":1700000060}"#,                                // no sub
            r#"{"sub":"  ","exp":1700000060}"#,                     // blank sub
            r#"{"sub":7,"exp":1700000060}"#,                        // sub a number
            r#"{"sub":"alice","exp":"1700000060"}"#,                // exp a string
            r#"{"sub":"alice","exp":1699999999}"#,                  // expired
            r#"{"sub":"alice","iat":1700000001,"exp":1700000060}"#, // issued in the future
        ];
        for claims in cases {
            let mut s = server(UnsecuredValidatorOptions::default());
            let step = s.evaluate_at(&first(&token(claims)), NOW).unwrap();
            assert_eq!(
                step,
                Step::Continue(br#"{"status":"invalid_token"}"#.to_vec()),
                "{claims}"
            );
            assert_eq!(
                s.evaluate_at(b"\x01", NOW).unwrap_err().0,
                r#"{"status":"invalid_token"}"#
            );
        }
        for bad in [
            "not-a-jwt".to_string(),
            format!(
                "{}.{}.sig",
                b64(r#"{"alg":"none"}"#),
                b64(r#"{"sub":"a","exp":1800000000}"#)
            ),
            format!(
                "{}.{}.",
                b64(r#"{"alg":"RS256"}"#),
                b64(r#"{"sub":"a","exp":1800000000}"#)
            ),
            format!(
                "{}.{}.",
                b64(r#"{"typ":"JWT"}"#),
                b64(r#"{"sub":"a","exp":1800000000}"#)
            ),
            format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("not json")),
            "e30.e30.e30.".to_string(),
        ] {
            let mut s = server(UnsecuredValidatorOptions::default());
            assert!(
                matches!(s.evaluate_at(&first(&bad), NOW), Ok(Step::Continue(_))),
                "{bad}"
            );
        }
        // A \x01 with no error pending is a malformed first message.
        let mut s = server(UnsecuredValidatorOptions::default());
        assert_eq!(s.evaluate_at(b"\x01", NOW).unwrap_err().0, GENERIC_FAILURE);
    }

    #[test]
    fn clock_skew_scope_and_principal_claim_options() {
        let options = UnsecuredValidatorOptions::from_options(&[
            ("unsecuredValidatorPrincipalClaimName".into(), "user".into()),
            ("unsecuredValidatorScopeClaimName".into(), "roles".into()),
            (
                "unsecuredValidatorRequiredScope".into(),
                "read write".into(),
            ),
            (
                "unsecuredValidatorAllowableClockSkewMs".into(),
                "5000".into(),
            ),
        ])
        .unwrap();
        // Expired 2 s ago, or issued 3 s ahead: within the skew.
        for claims in [
            r#"{"user":"bob","roles":["write","read"],"iat":1699999990,"exp":1699999998}"#,
            r#"{"user":"bob","roles":["write","read"],"iat":1700000003,"exp":1700000060}"#,
        ] {
            let mut s = server(options.clone());
            assert!(
                matches!(
                    s.evaluate_at(&first(&token(claims)), NOW),
                    Ok(Step::Complete { principal, .. }) if principal == KafkaPrincipal::user("bob")
                ),
                "{claims}"
            );
        }
        let missing = token(r#"{"user":"bob","roles":"read","exp":1700000060}"#);
        let mut s = server(options.clone());
        assert_eq!(
            s.evaluate_at(&first(&missing), NOW).unwrap(),
            Step::Continue(br#"{"status":"insufficient_scope", "scope":"[read, write]"}"#.to_vec())
        );
        assert!(
            UnsecuredValidatorOptions::from_options(&[(
                "unsecuredValidatorAllowableClockSkewMs".into(),
                "-1".into()
            )])
            .is_err()
        );
        assert!(
            UnsecuredValidatorOptions::from_options(&[(
                "unsecuredValidatorRequiredScope".into(),
                "a\"b".into()
            )])
            .is_err()
        );
    }

    #[test]
    fn an_authzid_other_than_the_principal_fails() {
        let mut s = server(UnsecuredValidatorOptions::default());
        let t = token(r#"{"sub":"alice","exp":1700000060}"#);
        let message = format!("n,a=bob,\x01auth=Bearer {t}\x01\x01");
        assert!(
            s.evaluate_at(message.as_bytes(), NOW)
                .unwrap_err()
                .0
                .contains("(bob)")
        );
    }
}
