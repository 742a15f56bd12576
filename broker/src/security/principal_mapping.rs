//! `ssl.principal.mapping.rules`: Kafka's `SslPrincipalMapper`.
//!
//! A comma-separated list of rules, tried in order on the certificate subject's
//! distinguished name (RFC 2253, see [`super::dn`]); the first that applies gives the
//! principal name. `DEFAULT` gives the DN itself. `RULE:pattern/replacement/` applies when
//! the Java regular expression `pattern` matches the whole DN and gives `replacement` with
//! `$n` back references; a trailing `L` or `U` (`RULE:.../.../L`) lower- or upper-cases the
//! result. `\` escapes `/` and `\` inside pattern and replacement. When no rule applies the
//! connection cannot be given a principal (Kafka's `NoMatchingRule`).

use std::fmt;

use regex::Regex;

const RULE_PATTERN: &str = r"(DEFAULT)|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?).*?|(.*?)";

/// One rule.
#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        source: String,
        /// `^(?:pattern)$`: Java's `Matcher.matches()` is a whole-string match.
        whole: Regex,
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// A parsed `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl Default for PrincipalMapper {
    /// `DEFAULT`: the DN is the name.
    fn default() -> PrincipalMapper {
        PrincipalMapper {
            rules: vec![Rule::Default],
        }
    }
}

impl fmt::Display for PrincipalMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|r| match r {
                Rule::Default => "DEFAULT".to_string(),
                Rule::Replace {
                    source,
                    replacement,
                    case,
                    ..
                } => {
                    let flag = match case {
                        Case::Keep => "",
                        Case::Lower => "/L",
                        Case::Upper => "/U",
                    };
                    format!("RULE:{source}/{replacement}{flag}")
                }
            })
            .collect();
        write!(f, "[{}]", rules.join(", "))
    }
}

impl PrincipalMapper {
    /// Parses the rules; the error is Kafka's `Invalid rule` message (or a bad regex).
    pub fn parse(rules: &str) -> Result<PrincipalMapper, String> {
        let splitter =
            Regex::new(&format!(r"\s*({RULE_PATTERN})\s*(,\s*|$)")).map_err(|e| e.to_string())?;
        let parser = Regex::new(&format!("^(?:{RULE_PATTERN})")).map_err(|e| e.to_string())?;
        let mut parsed = Vec::new();
        for found in splitter.captures_iter(rules.trim()) {
            let rule = found.get(1).map_or("", |m| m.as_str());
            let Some(m) = parser.captures(rule) else {
                return Err(format!("Invalid rule: {rule}"));
            };
            let end = m.get(0).map_or(0, |m| m.end());
            if end != rule.len() {
                return Err(format!(
                    "Invalid rule: `{rule}`, unmatched substring: `{}`",
                    &rule[end..]
                ));
            }
            if m.get(1).is_some() {
                parsed.push(Rule::Default);
            } else if let Some(pattern) = m.get(2) {
                let source = pattern.as_str().to_string();
                let replacement = m.get(3).map_or("", |r| r.as_str()).to_string();
                let case = match m.get(4).map(|c| c.as_str()) {
                    Some("L") => Case::Lower,
                    Some("U") => Case::Upper,
                    _ => Case::Keep,
                };
                let whole = Regex::new(&format!("^(?:{source})$"))
                    .map_err(|e| format!("Invalid rule: {rule}: {e}"))?;
                let pattern =
                    Regex::new(&source).map_err(|e| format!("Invalid rule: {rule}: {e}"))?;
                parsed.push(Rule::Replace {
                    source,
                    whole,
                    pattern,
                    replacement,
                    case,
                });
            }
            // Empty rules are ignored, as in Kafka.
        }
        Ok(PrincipalMapper { rules: parsed })
    }

    /// The principal name for `dn`, or Kafka's `No rules apply to ...` message.
    pub fn name(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Replace {
                    whole,
                    pattern,
                    replacement,
                    case,
                    ..
                } => {
                    if !whole.is_match(dn) {
                        continue;
                    }
                    let groups = pattern.captures_len() - 1;
                    let replacement = java_replacement(replacement, groups);
                    let result = pattern.replace_all(dn, replacement.as_str()).into_owned();
                    return Ok(match case {
                        Case::Keep => result,
                        Case::Lower => result.to_lowercase(),
                        Case::Upper => result.to_uppercase(),
                    });
                }
            }
        }
        Err(format!("No rules apply to {dn}, rules {self}"))
    }
}

/// A Java `Matcher.replaceAll` replacement as the `regex` crate's: `$12` takes as many digits
/// as make a group that exists (Kafka first turns a reference to a missing group into a
/// literal, as `escapeLiteralBackReferences` does), `\x` is a literal `x`.
fn java_replacement(java: &str, groups: usize) -> String {
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                if chars[i + 1] == '$' {
                    out.push_str("$$");
                } else {
                    out.push(chars[i + 1]);
                }
                i += 2;
            }
            '$' if chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && chars[end].is_ascii_digit() {
                    end += 1;
                }
                let digits: String = chars[start..end].iter().collect();
                // Java takes the longest prefix that names an existing group.
                let mut len = digits.len();
                let mut number: usize = digits.parse().unwrap_or(usize::MAX);
                while number > groups && len > 1 {
                    len -= 1;
                    number = digits[..len].parse().unwrap_or(usize::MAX);
                }
                if number > groups || digits.starts_with('0') && groups == 0 {
                    // Kafka escapes a reference to a missing group: a literal `$n`.
                    out.push_str("$$");
                    out.push_str(&digits);
                } else {
                    out.push_str(&format!("${{{number}}}"));
                    out.push_str(&digits[len..]);
                }
                i = end;
            }
            '$' => {
                out.push_str("$$");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_gives_the_dn() {
        let m = PrincipalMapper::parse("DEFAULT").unwrap();
        assert_eq!(m.name("CN=alice,O=acme").unwrap(), "CN=alice,O=acme");
    }

    #[test]
    fn kafka_documented_rules() {
        // From Kafka's documentation of ssl.principal.mapping.rules.
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.name("CN=kafka-server1,OU=ServiceUsers,O=org,C=US")
                .unwrap(),
            "kafka-server1"
        );
        assert_eq!(
            m.name("CN=adminUser,OU=Admin,O=Apache,L=Unknown,ST=NY,C=US")
                .unwrap(),
            "adminuser@admin"
        );
        assert_eq!(m.name("cn=Duke,ou=JavaSoft").unwrap(), "duke");
        assert_eq!(m.name("O=x").unwrap(), "O=x");
    }

    #[test]
    fn upper_case_escapes_and_no_match() {
        let m = PrincipalMapper::parse("RULE:^CN=([^,]*),.*$/$1\\/x/U").unwrap();
        assert_eq!(m.name("CN=bob,O=a").unwrap(), "BOB/X");
        let err = m.name("O=a").unwrap_err();
        assert!(err.starts_with("No rules apply to O=a, rules"), "{err}");
        // A reference past the last group is literal, as Kafka's escapeLiteralBackReferences.
        let m = PrincipalMapper::parse("RULE:^CN=(.*)$/$1-$2/").unwrap();
        assert_eq!(m.name("CN=c").unwrap(), "c-$2");
        let m = PrincipalMapper::parse("RULE:^CN=(.*)$/$12/").unwrap();
        assert_eq!(m.name("CN=c").unwrap(), "c2");
    }

    #[test]
    fn invalid_rules_are_refused_as_kafka_does() {
        let err = PrincipalMapper::parse("RULE:a/b/Lxyz").unwrap_err();
        assert_eq!(
            err,
            "Invalid rule: `RULE:a/b/Lxyz`, unmatched substring: `xyz`"
        );
        assert!(PrincipalMapper::parse("RULE:(/x/").is_err());
        // Empty rules are skipped.
        let m = PrincipalMapper::parse(" DEFAULT , ").unwrap();
        assert_eq!(m.rules.len(), 1);
    }
}
