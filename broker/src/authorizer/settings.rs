//! The authorizer's configuration: `authorizer.class.name`, `super.users`,
//! `allow.everyone.if.no.acl.found`.

/// The one authorizer class Gregor implements (Kafka's KRaft authorizer).
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// What the configuration asks of authorization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizerSettings {
    /// Whether ACLs are enforced (`authorizer.class.name` names the StandardAuthorizer).
    pub enabled: bool,
    /// `super.users`: principals (`User:admin`) allowed everything.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`: the answer for a resource no ACL names.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerSettings {
    /// Reads the three keys (each `None` when unset); the error names the key.
    ///
    /// An empty `authorizer.class.name` is Kafka's default: no authorizer. `super.users` is
    /// a semicolon-separated list as `StandardAuthorizer.getConfiguredSuperUsers` splits it
    /// (entries trimmed, empty ones dropped); each must be `Type:name`.
    pub fn parse(
        class_name: Option<&str>,
        super_users: Option<&str>,
        allow_everyone: Option<&str>,
    ) -> Result<AuthorizerSettings, String> {
        let enabled = match class_name.map(str::trim) {
            None | Some("") => false,
            Some(STANDARD_AUTHORIZER) => true,
            Some(other) => {
                return Err(format!(
                    "authorizer.class.name: {other} is not supported; Gregor implements only \
                     {STANDARD_AUTHORIZER}"
                ));
            }
        };
        let mut users = Vec::new();
        for entry in super_users.unwrap_or("").split(';') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            match entry.split_once(':') {
                Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {
                    users.push(entry.to_string())
                }
                _ => {
                    return Err(format!(
                        "super.users: `{entry}` is not a principal (expected Type:name, e.g. \
                         User:admin)"
                    ));
                }
            }
        }
        let allow_everyone_if_no_acl_found = match allow_everyone.map(str::trim) {
            None | Some("") => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(format!(
                    "allow.everyone.if.no.acl.found: `{v}` is not a boolean (true or false)"
                ));
            }
        };
        Ok(AuthorizerSettings {
            enabled,
            super_users: users,
            allow_everyone_if_no_acl_found,
        })
    }
}
