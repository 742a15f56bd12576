//! Kafka's JAAS configuration syntax, the value of `sasl.jaas.config`:
//!
//! ```text
//! org.apache.kafka.common.security.plain.PlainLoginModule required
//!     username="admin" password="admin-secret" user_alice="alice-secret";
//! ```
//!
//! One or more entries, each a login module class, a control flag (`required`, `requisite`,
//! `sufficient`, `optional`, any case) and `key=value` options, ended by `;`. Kafka parses it
//! with Java's `StreamTokenizer` (`JaasConfig`): words of letters, digits, `.`, `-`, `_` and
//! `$`; values quoted with `"` or `'` (backslash escapes) or bare words; `//` and `/* */`
//! comments. A value that the tokenizer reads as a number (starting with a digit, `.` or
//! `-`) is not a string there, so Kafka refuses it; so do we.

use std::fmt;

/// A parsed JAAS configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasConfig {
    /// The entries, in order.
    pub entries: Vec<JaasEntry>,
}

/// One login module entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasEntry {
    /// The login module class name.
    pub login_module: String,
    /// The control flag, upper case (`REQUIRED`, ...).
    pub flag: String,
    /// The options in order; a repeated key keeps its last value when looked up.
    pub options: Vec<(String, String)>,
}

impl JaasEntry {
    /// The value of option `key` (the last one when repeated, as Java's `HashMap.put`).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a JAAS configuration does not parse; the messages are Kafka's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasError(pub String);

impl fmt::Display for JaasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A word or a quoted string.
    Text(String),
    /// Something StreamTokenizer reads as a number: no string value.
    Number,
    /// `=`, `;` or another ordinary character.
    Char(char),
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$' || (c as u32) >= 0xA0
}

fn is_word_part(c: char) -> bool {
    is_word_start(c) || c.is_ascii_digit() || c == '.' || c == '-'
}

fn tokenize(text: &str) -> Result<Vec<Token>, JaasError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if (c as u32) <= 0x20 {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c.is_ascii_digit() || c == '.' || c == '-' {
            // StreamTokenizer's parseNumbers: digits, '.' and '-' start a number.
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Number);
        } else if is_word_start(c) {
            let start = i;
            while i < chars.len() && is_word_part(chars[i]) {
                i += 1;
            }
            tokens.push(Token::Text(chars[start..i].iter().collect()));
        } else if c == '"' || c == '\'' {
            let quote = c;
            i += 1;
            let mut value = String::new();
            // StreamTokenizer ends a quoted string at the quote or at the end of the line.
            while i < chars.len() && chars[i] != quote && chars[i] != '\n' && chars[i] != '\r' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                    value.push(match chars[i] {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'a' => '\u{7}',
                        'v' => '\u{b}',
                        other => other,
                    });
                } else {
                    value.push(chars[i]);
                }
                i += 1;
            }
            i += 1;
            tokens.push(Token::Text(value));
        } else {
            tokens.push(Token::Char(c));
            i += 1;
        }
    }
    Ok(tokens)
}

impl JaasConfig {
    /// Parses a `sasl.jaas.config` value as Kafka's `JaasConfig` does.
    pub fn parse(text: &str) -> Result<JaasConfig, JaasError> {
        let tokens = tokenize(text)?;
        let mut iter = tokens.into_iter().peekable();
        let mut entries = Vec::new();
        while let Some(first) = iter.next() {
            let login_module = match first {
                Token::Text(name) => name,
                _ => {
                    return Err(JaasError(
                        "Login module not specified in JAAS config".into(),
                    ));
                }
            };
            let flag = match iter.next() {
                None => {
                    return Err(JaasError(
                        "Login module control flag not specified in JAAS config".into(),
                    ));
                }
                Some(Token::Text(flag)) => flag,
                Some(_) => {
                    return Err(JaasError(
                        "Login module control flag is not available in the JAAS config".into(),
                    ));
                }
            };
            let flag = flag.to_ascii_uppercase();
            if !matches!(
                flag.as_str(),
                "REQUIRED" | "REQUISITE" | "SUFFICIENT" | "OPTIONAL"
            ) {
                return Err(JaasError(format!(
                    "Invalid login module control flag '{flag}' in JAAS config"
                )));
            }
            let mut options = Vec::new();
            let mut terminated = false;
            while let Some(token) = iter.next() {
                let key = match token {
                    Token::Char(';') => {
                        terminated = true;
                        break;
                    }
                    Token::Text(key) => key,
                    Token::Number => "null".to_string(),
                    Token::Char(c) => c.to_string(),
                };
                match (iter.next(), iter.next()) {
                    (Some(Token::Char('=')), Some(Token::Text(value))) => {
                        options.push((key, value))
                    }
                    _ => {
                        return Err(JaasError(format!(
                            "Value not specified for key '{key}' in JAAS config"
                        )));
                    }
                }
            }
            if !terminated {
                return Err(JaasError(
                    "JAAS config entry not terminated by semi-colon".into(),
                ));
            }
            entries.push(JaasEntry {
                login_module,
                flag,
                options,
            });
        }
        if entries.is_empty() {
            return Err(JaasError(
                "Login module not specified in JAAS config".into(),
            ));
        }
        Ok(JaasConfig { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_users_parse() {
        let c = JaasConfig::parse(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"admin\" password='admin-secret'\n user_admin=\"admin-secret\" user_alice=\"a;b=c\\\"d\";",
        )
        .unwrap();
        assert_eq!(c.entries.len(), 1);
        let e = &c.entries[0];
        assert_eq!(
            e.login_module,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(e.flag, "REQUIRED");
        assert_eq!(e.option("password"), Some("admin-secret"));
        assert_eq!(e.option("user_alice"), Some("a;b=c\"d"));
        assert_eq!(e.options.len(), 4);
    }

    #[test]
    fn bare_words_comments_and_several_entries() {
        let c = JaasConfig::parse(
            "/* first */ a.B required user_x=word$1; // tail\n c.D Optional k=\"v\";",
        )
        .unwrap();
        assert_eq!(c.entries.len(), 2);
        assert_eq!(c.entries[0].option("user_x"), Some("word$1"));
        assert_eq!(c.entries[1].flag, "OPTIONAL");
    }

    #[test]
    fn kafka_errors() {
        let err = |t: &str| JaasConfig::parse(t).unwrap_err().0;
        assert_eq!(err(""), "Login module not specified in JAAS config");
        assert_eq!(
            err("a.B"),
            "Login module control flag not specified in JAAS config"
        );
        assert_eq!(
            err("a.B maybe;"),
            "Invalid login module control flag 'MAYBE' in JAAS config"
        );
        assert_eq!(
            err("a.B required user_a=\"x\""),
            "JAAS config entry not terminated by semi-colon"
        );
        assert_eq!(
            err("a.B required user_a;"),
            "Value not specified for key 'user_a' in JAAS config"
        );
        // A bare number is no string for StreamTokenizer.
        assert_eq!(
            err("a.B required user_a=123;"),
            "Value not specified for key 'user_a' in JAAS config"
        );
    }
}
