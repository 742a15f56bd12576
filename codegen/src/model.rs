//! The validated model: every struct resolved, every version range parsed, every rule of
//! Kafka's own generator checked. The emitter trusts what is here.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::spec::{self, FieldSpec, MessageSpec, SpecKind};
use crate::versions::Versions;

/// A problem in a definition file, naming the file, the struct and the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The definition file.
    pub file: PathBuf,
    /// `Struct` or `Struct.Field`; empty for file-level problems.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.location,
                self.message
            )
        }
    }
}

impl std::error::Error for Error {}

/// One validated definition file.
#[derive(Clone, Debug)]
pub struct Message {
    /// Where the definition came from.
    pub path: PathBuf,
    /// The name of the directory holding the file (groups coordinator records).
    pub group: String,
    /// The message name.
    pub name: String,
    /// The kind of definition.
    pub kind: SpecKind,
    /// API key or record type.
    pub api_key: Option<i16>,
    /// Valid versions.
    pub valid: Versions,
    /// Flexible versions (always empty or open-ended).
    pub flexible: Versions,
    /// The highest valid version is unstable.
    pub latest_unstable: bool,
    /// Listeners serving the API.
    pub listeners: Vec<String>,
    /// Every struct of the file; the first is the message itself.
    pub structs: Vec<Struct>,
}

impl Message {
    /// The top-level struct.
    pub fn root(&self) -> &Struct {
        &self.structs[0]
    }

    /// True when some version is flexible, so every struct carries unknown tagged fields.
    pub fn has_flexible(&self) -> bool {
        !self.flexible.intersect(self.valid).is_empty()
    }
}

/// A struct: the message itself, an inline struct, or a common struct.
#[derive(Clone, Debug)]
pub struct Struct {
    /// The struct (and Rust type) name.
    pub name: String,
    /// The versions it exists in.
    pub versions: Versions,
    /// Description from the field that introduced it.
    pub about: String,
    /// Its fields, in wire order.
    pub fields: Vec<Field>,
}

/// A validated field.
#[derive(Clone, Debug)]
pub struct Field {
    /// The name as written (upper camel case).
    pub name: String,
    /// The type.
    pub ty: Type,
    /// Versions the field exists in, limited to the message's valid versions.
    pub versions: Versions,
    /// Versions in which it may be null, limited to `versions`.
    pub nullable: Versions,
    /// Versions in which it is a tagged field.
    pub tagged: Versions,
    /// Versions in which it is a regular (untagged) field.
    pub regular: Versions,
    /// The tag, for tagged fields.
    pub tag: Option<u32>,
    /// Dropped silently when writing a version that lacks it.
    pub ignorable: bool,
    /// Key of the elements of its array.
    pub map_key: bool,
    /// The default value.
    pub default: Default,
    /// Description.
    pub about: String,
    /// Versions using compact encoding for this field, when it overrides the message's.
    pub flexible_override: Option<Versions>,
}

impl Field {
    /// True when the Rust type is an `Option`.
    pub fn is_optional(&self) -> bool {
        !self.nullable.is_empty()
    }
}

/// A field type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// `bool`
    Bool,
    /// `int8`
    Int8,
    /// `int16`
    Int16,
    /// `uint16`
    Uint16,
    /// `int32`
    Int32,
    /// `uint32`
    Uint32,
    /// `int64`
    Int64,
    /// `float64`
    Float64,
    /// `string`
    String,
    /// `uuid`
    Uuid,
    /// `bytes`
    Bytes,
    /// `records`
    Records,
    /// A struct of this file.
    Struct(String),
    /// `[]T`
    Array(Box<Type>),
}

impl Type {
    fn parse(text: &str) -> Result<Type, String> {
        if let Some(element) = text.strip_prefix("[]") {
            let element = Type::parse(element)?;
            return match element {
                Type::Array(_) => Err(format!("nested arrays are not supported: {text:?}")),
                Type::Records => Err("arrays of records are not supported".into()),
                other => Ok(Type::Array(Box::new(other))),
            };
        }
        Ok(match text {
            "bool" => Type::Bool,
            "int8" => Type::Int8,
            "int16" => Type::Int16,
            "uint16" => Type::Uint16,
            "int32" => Type::Int32,
            "uint32" => Type::Uint32,
            "int64" => Type::Int64,
            "float64" => Type::Float64,
            "string" => Type::String,
            "uuid" => Type::Uuid,
            "bytes" => Type::Bytes,
            "records" => Type::Records,
            name if name.starts_with(|c: char| c.is_ascii_uppercase())
                && name.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                Type::Struct(name.to_string())
            }
            other => return Err(format!("unknown type {other:?}")),
        })
    }

    /// The struct this type names, directly or as array elements.
    pub fn struct_name(&self) -> Option<&str> {
        match self {
            Type::Struct(name) => Some(name),
            Type::Array(element) => element.struct_name(),
            _ => None,
        }
    }

    fn can_be_nullable(&self) -> bool {
        matches!(
            self,
            Type::String | Type::Bytes | Type::Records | Type::Array(_) | Type::Struct(_)
        )
    }

    fn can_be_map_key(&self) -> bool {
        !matches!(
            self,
            Type::Bytes | Type::Records | Type::Array(_) | Type::Struct(_)
        )
    }
}

/// A field's default value, checked against its type.
#[derive(Clone, Debug, PartialEq)]
pub enum Default {
    /// No default given: zero, false, empty, or the struct's own default.
    Implicit,
    /// `"null"`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer, in range for the field type.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A UUID (given in Kafka's base64 form).
    Uuid([u8; 16]),
}

/// Reads, parses and validates every `*.json` file in `dirs` (sorted by file name within
/// each directory). Returns all errors found, not just the first.
pub fn load(dirs: &[PathBuf]) -> Result<Vec<Message>, Vec<Error>> {
    let mut messages = Vec::new();
    let mut errors = Vec::new();
    for dir in dirs {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
                .collect(),
            Err(err) => {
                errors.push(file_error(dir, format!("cannot read directory: {err}")));
                continue;
            }
        };
        files.sort();
        for path in files {
            match std::fs::read_to_string(&path) {
                Ok(text) => match build(&path, &text) {
                    Ok(message) => messages.push(message),
                    Err(mut errs) => errors.append(&mut errs),
                },
                Err(err) => errors.push(file_error(&path, format!("cannot read: {err}"))),
            }
        }
    }
    check_unique_names(&messages, &mut errors);
    check_pairs(&messages, &mut errors);
    if errors.is_empty() {
        Ok(messages)
    } else {
        Err(errors)
    }
}

fn file_error(path: &Path, message: String) -> Error {
    Error {
        file: path.to_path_buf(),
        location: String::new(),
        message,
    }
}

fn check_unique_names(messages: &[Message], errors: &mut Vec<Error>) {
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    let mut keys: HashMap<(SpecKind, &str, i16), &Path> = HashMap::new();
    for message in messages {
        if let Some(first) = seen.insert(&message.name, &message.path) {
            errors.push(file_error(
                &message.path,
                format!(
                    "message name {} is also defined in {}",
                    message.name,
                    first.display()
                ),
            ));
        }
        if let Some(key) = message.api_key {
            // Record types are numbered per directory (each coordinator has its own).
            let scope = match message.kind {
                SpecKind::CoordinatorKey | SpecKind::CoordinatorValue => message.group.as_str(),
                _ => "",
            };
            if let Some(first) = keys.insert((message.kind, scope, key), &message.path) {
                errors.push(file_error(
                    &message.path,
                    format!("api key {key} is also used by {}", first.display()),
                ));
            }
        }
    }
}

/// Every request needs the response of the same API key, and the other way round.
fn check_pairs(messages: &[Message], errors: &mut Vec<Error>) {
    for message in messages {
        let partner = match message.kind {
            SpecKind::Request => SpecKind::Response,
            SpecKind::Response => SpecKind::Request,
            _ => continue,
        };
        let found = messages
            .iter()
            .any(|m| m.kind == partner && m.api_key == message.api_key);
        if !found {
            errors.push(file_error(
                &message.path,
                format!(
                    "{} has api key {} but no {partner:?} definition has that key",
                    message.name,
                    message.api_key.unwrap_or_default()
                ),
            ));
        }
    }
}

/// Parses and validates one definition file.
pub fn build(path: &Path, text: &str) -> Result<Message, Vec<Error>> {
    let spec = spec::parse(text).map_err(|err| vec![file_error(path, err.to_string())])?;
    Builder::new(path).run(spec)
}

/// Accumulates structs and errors while walking one file.
struct Builder {
    path: PathBuf,
    valid: Versions,
    flexible: Versions,
    errors: Vec<Error>,
}

/// A struct definition found in the file, before its fields are validated.
struct PendingStruct<'a> {
    name: String,
    versions: Versions,
    about: String,
    fields: &'a [FieldSpec],
    /// True when some array field has this struct as its element type.
    in_array: bool,
}

impl Builder {
    fn new(path: &Path) -> Builder {
        Builder {
            path: path.to_path_buf(),
            valid: Versions::NONE,
            flexible: Versions::NONE,
            errors: Vec::new(),
        }
    }

    fn error(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Error {
            file: self.path.clone(),
            location: location.into(),
            message: message.into(),
        });
    }

    fn versions(&mut self, location: &str, what: &str, text: &str) -> Versions {
        Versions::parse(text).unwrap_or_else(|err| {
            self.error(location, format!("{what}: {err}"));
            Versions::NONE
        })
    }

    fn run(mut self, spec: MessageSpec) -> Result<Message, Vec<Error>> {
        let name = spec.name.clone();
        if !is_identifier(&name) {
            self.error("", format!("invalid message name {name:?}"));
        }
        self.valid = self.versions(&name, "validVersions", &spec.valid_versions);
        self.flexible = match &spec.flexible_versions {
            Some(text) => self.versions(&name, "flexibleVersions", text),
            None if self.valid.is_empty() => Versions::NONE,
            None => {
                self.error(
                    &name,
                    "flexibleVersions is required (use \"0+\" for new messages)",
                );
                Versions::NONE
            }
        };
        if !self.flexible.is_empty() && !self.flexible.is_open_ended() {
            self.error(
                &name,
                "flexibleVersions must be \"none\" or an open-ended range (\"N+\")",
            );
        }
        let needs_key = !matches!(spec.kind, SpecKind::Header | SpecKind::Data);
        match (needs_key, spec.api_key) {
            (true, None) => self.error(&name, "apiKey is required for this type"),
            (false, Some(_)) => self.error(
                &name,
                "apiKey is only allowed on requests, responses and records",
            ),
            (_, Some(key)) if key < 0 => self.error(&name, format!("negative apiKey {key}")),
            _ => {}
        }

        let pending = self.collect_structs(&spec);
        let structs: Vec<Struct> = pending
            .iter()
            .map(|p| self.build_struct(p, &pending))
            .collect();

        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        Ok(Message {
            group: self
                .path
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: self.path,
            name,
            kind: spec.kind,
            api_key: spec.api_key,
            valid: self.valid,
            flexible: self.flexible,
            latest_unstable: spec.latest_version_unstable,
            listeners: spec.listeners,
            structs,
        })
    }

    /// Finds every struct defined in the file: the message, inline structs, common structs.
    fn collect_structs<'a>(&mut self, spec: &'a MessageSpec) -> Vec<PendingStruct<'a>> {
        let mut found = vec![PendingStruct {
            name: spec.name.clone(),
            versions: self.valid,
            about: String::new(),
            fields: &spec.fields,
            in_array: false,
        }];
        let mut queue: Vec<(&'a [FieldSpec], String)> = vec![(&spec.fields, spec.name.clone())];
        for common in &spec.common_structs {
            let versions = self.versions(&common.name, "versions", &common.versions);
            found.push(PendingStruct {
                name: common.name.clone(),
                versions,
                about: String::new(),
                fields: &common.fields,
                in_array: false,
            });
            queue.push((&common.fields, common.name.clone()));
        }
        while let Some((fields, owner)) = queue.pop() {
            for field in fields {
                let Some(inner) = &field.fields else { continue };
                let location = format!("{owner}.{}", field.name);
                match Type::parse(&field.ty)
                    .ok()
                    .as_ref()
                    .and_then(Type::struct_name)
                {
                    Some(struct_name) => {
                        let versions = field
                            .versions
                            .as_deref()
                            .or(field.tagged_versions.as_deref())
                            .map(|text| self.versions(&location, "versions", text))
                            .unwrap_or(Versions::NONE);
                        found.push(PendingStruct {
                            name: struct_name.to_string(),
                            versions,
                            about: field.about.clone().unwrap_or_default(),
                            fields: inner,
                            in_array: false,
                        });
                        queue.push((inner, struct_name.to_string()));
                    }
                    None => self.error(
                        location,
                        "only struct and struct-array fields can have \"fields\"",
                    ),
                }
            }
        }
        // Sort nested definitions by name for stable output, keeping the message first.
        found[1..].sort_by(|a, b| a.name.cmp(&b.name));
        let mut names = HashSet::new();
        for pending in &found {
            if !names.insert(pending.name.clone()) {
                let name = pending.name.clone();
                self.error(name, "struct is defined more than once in this file");
            }
        }
        // Mark the structs used as array elements (where mapKey is allowed).
        let mut in_array = HashSet::new();
        for pending in &found {
            for field in pending.fields {
                if let Ok(Type::Array(element)) = Type::parse(&field.ty) {
                    if let Type::Struct(name) = *element {
                        in_array.insert(name);
                    }
                }
            }
        }
        for pending in &mut found {
            pending.in_array = in_array.contains(&pending.name);
        }
        found
    }

    fn build_struct(&mut self, pending: &PendingStruct<'_>, all: &[PendingStruct<'_>]) -> Struct {
        let mut fields = Vec::new();
        let mut names = HashSet::new();
        let mut tags = BTreeSet::new();
        for spec in pending.fields {
            let location = format!("{}.{}", pending.name, spec.name);
            if !names.insert(spec.name.clone()) {
                self.error(&location, "duplicate field name");
            }
            if let Some(field) = self.build_field(&location, spec, pending, all) {
                if let Some(tag) = field.tag {
                    if !tags.insert(tag) {
                        self.error(
                            &location,
                            format!("duplicate tag {tag}; tags must be unique"),
                        );
                    }
                }
                fields.push(field);
            }
        }
        if let Some(missing) = (0..tags.len() as u32).find(|t| !tags.contains(t)) {
            self.error(
                pending.name.clone(),
                format!("tags are not contiguous from 0: tag {missing} is unused"),
            );
        }
        Struct {
            name: pending.name.clone(),
            versions: pending.versions,
            about: pending.about.clone(),
            fields,
        }
    }

    fn build_field(
        &mut self,
        location: &str,
        spec: &FieldSpec,
        owner: &PendingStruct<'_>,
        all: &[PendingStruct<'_>],
    ) -> Option<Field> {
        let errors_before = self.errors.len();
        if !is_identifier(&spec.name) {
            self.error(location, format!("invalid field name {:?}", spec.name));
        }
        let ty = match Type::parse(&spec.ty) {
            Ok(ty) => ty,
            Err(err) => {
                self.error(location, err);
                return None;
            }
        };
        if let Some(name) = ty.struct_name() {
            if !all.iter().any(|s| s.name == name) {
                self.error(location, format!("unresolved struct type {name}"));
            }
        }
        let tagged = spec
            .tagged_versions
            .as_deref()
            .map(|text| self.versions(location, "taggedVersions", text))
            .unwrap_or(Versions::NONE);
        let declared = match spec.versions.as_deref() {
            Some(text) => self.versions(location, "versions", text),
            None if !tagged.is_empty() => tagged,
            None => {
                self.error(location, "versions is required");
                Versions::NONE
            }
        };
        // Versions below the message's are allowed (they describe removed versions); a field
        // that starts after the last valid version can never be written.
        if !declared.is_empty() && !self.valid.is_empty() && declared.lowest > self.valid.highest {
            self.error(
                location,
                format!(
                    "versions {declared} start after the message's valid versions {}",
                    self.valid
                ),
            );
        }
        let versions = declared.intersect(self.valid);
        let declared_nullable = spec
            .nullable_versions
            .as_deref()
            .map(|text| self.versions(location, "nullableVersions", text))
            .unwrap_or(Versions::NONE);
        if !declared_nullable.is_empty() && !ty.can_be_nullable() {
            self.error(location, format!("type {} cannot be nullable", spec.ty));
        }
        let nullable = declared_nullable.intersect(versions);

        let tag = self.check_tag(location, spec, tagged, declared, declared_nullable);
        let regular = match declared.subtract(tagged) {
            Some(regular) => regular.intersect(self.valid),
            None => {
                self.error(
                    location,
                    "tagged versions split the field's versions in two",
                );
                Versions::NONE
            }
        };

        let flexible_override = spec.flexible_versions.as_deref().map(|text| {
            if !matches!(ty, Type::String | Type::Bytes) {
                self.error(
                    location,
                    "only string and bytes fields can override flexibleVersions",
                );
            }
            self.versions(location, "flexibleVersions", text)
        });
        if spec.zero_copy && ty != Type::Bytes {
            self.error(location, "zeroCopy is only valid on bytes fields");
        }
        if spec.fields.is_some() && ty.struct_name().is_none() {
            self.error(
                location,
                "only struct and struct-array fields can have \"fields\"",
            );
        }
        if spec.map_key {
            if !owner.in_array {
                self.error(
                    location,
                    "mapKey is only valid in a struct used as array elements",
                );
            }
            if tag.is_some() {
                self.error(location, "tagged fields cannot be map keys");
            }
            if !ty.can_be_map_key() {
                self.error(
                    location,
                    format!("a field of type {} cannot be a map key", spec.ty),
                );
            }
        }
        let default = self.parse_default(location, spec, &ty, declared, declared_nullable);
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Field {
            name: spec.name.clone(),
            ty,
            versions,
            nullable,
            tagged: tagged.intersect(self.valid),
            regular,
            tag,
            ignorable: spec.ignorable,
            map_key: spec.map_key,
            default,
            about: spec.about.clone().unwrap_or_default(),
            flexible_override,
        })
    }

    /// The tag rules of Kafka's generator.
    fn check_tag(
        &mut self,
        location: &str,
        spec: &FieldSpec,
        tagged: Versions,
        versions: Versions,
        nullable: Versions,
    ) -> Option<u32> {
        let Some(tag) = spec.tag else {
            if !tagged.is_empty() {
                self.error(location, "taggedVersions is set but tag is missing");
            }
            return None;
        };
        let Ok(tag) = u32::try_from(tag) else {
            self.error(location, format!("tag {tag} is negative"));
            return None;
        };
        if tagged.is_empty() {
            self.error(
                location,
                format!("tag {tag} is set but taggedVersions is missing"),
            );
            return None;
        }
        if !tagged.is_open_ended() {
            self.error(
                location,
                format!("taggedVersions {tagged} must be open-ended (\"N+\")"),
            );
        }
        if !versions.contains_all(tagged) {
            self.error(
                location,
                format!("taggedVersions {tagged} are not within versions {versions}"),
            );
        }
        if !self.flexible.contains_all(tagged) {
            self.error(
                location,
                format!(
                    "tagged fields are only allowed in flexible versions: taggedVersions {tagged}, flexibleVersions {}",
                    self.flexible
                ),
            );
        }
        let nullable_tagged = nullable.intersect(tagged);
        if !nullable_tagged.is_empty() && nullable_tagged != tagged {
            self.error(
                location,
                "either every tagged version is nullable or none is",
            );
        }
        Some(tag)
    }

    fn parse_default(
        &mut self,
        location: &str,
        spec: &FieldSpec,
        ty: &Type,
        versions: Versions,
        nullable: Versions,
    ) -> Default {
        // JSON null and a missing key both mean "no default" (as in Kafka's generator).
        let text = match &spec.default {
            None | Some(serde_json::Value::Null) => return Default::Implicit,
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Bool(b)) => b.to_string(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(other) => {
                self.error(location, format!("invalid default {other}"));
                return Default::Implicit;
            }
        };
        if text.is_empty() && !matches!(ty, Type::String) {
            return Default::Implicit;
        }
        if text == "null" && ty.can_be_nullable() {
            if !nullable.contains_all(versions) {
                self.error(
                    location,
                    "default null requires the field to be nullable in all its versions",
                );
            }
            return Default::Null;
        }
        let invalid = |b: &mut Builder| {
            b.error(
                location,
                format!("invalid default {text:?} for type {}", spec.ty),
            );
            Default::Implicit
        };
        match ty {
            Type::Bool => match text.to_ascii_lowercase().as_str() {
                "true" => Default::Bool(true),
                "false" => Default::Bool(false),
                _ => invalid(self),
            },
            Type::Int8 | Type::Int16 | Type::Uint16 | Type::Int32 | Type::Uint32 | Type::Int64 => {
                let (digits, radix, negative) = match text.strip_prefix('-') {
                    Some(rest) => (rest, 10, true),
                    None => match text.strip_prefix("0x") {
                        Some(hex) => (hex, 16, false),
                        None => (text.as_str(), 10, false),
                    },
                };
                let Ok(magnitude) = i128::from_str_radix(digits, radix) else {
                    return invalid(self);
                };
                let value = if negative { -magnitude } else { magnitude };
                let (min, max): (i128, i128) = match ty {
                    Type::Int8 => (i8::MIN.into(), i8::MAX.into()),
                    Type::Int16 => (i16::MIN.into(), i16::MAX.into()),
                    Type::Uint16 => (0, u16::MAX.into()),
                    Type::Int32 => (i32::MIN.into(), i32::MAX.into()),
                    Type::Uint32 => (0, u32::MAX.into()),
                    _ => (i64::MIN.into(), i64::MAX.into()),
                };
                if value < min || value > max {
                    return invalid(self);
                }
                Default::Int(value as i64)
            }
            Type::Float64 => text
                .parse()
                .map(Default::Float)
                .unwrap_or_else(|_| invalid(self)),
            Type::String => Default::Str(text),
            Type::Uuid => match decode_base64_uuid(&text) {
                Some(bytes) => Default::Uuid(bytes),
                None => invalid(self),
            },
            // Only empty (handled above) or null are valid for these.
            Type::Bytes | Type::Records | Type::Struct(_) | Type::Array(_) => invalid(self),
        }
    }
}

fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Decodes Kafka's text form of a UUID: 22 characters of unpadded URL-safe base64.
fn decode_base64_uuid(text: &str) -> Option<[u8; 16]> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(json: &str) -> Vec<String> {
        match build(Path::new("Test.json"), json) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn message(fields: &str) -> String {
        format!(
            r#"{{ "apiKey": 99, "type": "request", "name": "TestRequest", "validVersions": "0-3",
                "flexibleVersions": "2+", "fields": [ {fields} ] }}"#
        )
    }

    fn assert_error(fields: &str, needle: &str) {
        let errors = errors_of(&message(fields));
        assert!(
            errors
                .iter()
                .any(|e| e.contains(needle) && e.starts_with("Test.json: ")),
            "expected an error containing {needle:?}, got {errors:?}"
        );
    }

    #[test]
    fn a_valid_message_builds() {
        let json = message(
            r#"{ "name": "Topics", "type": "[]Topic", "versions": "0+", "nullableVersions": "1+",
                 "fields": [ { "name": "Name", "type": "string", "versions": "0+", "mapKey": true },
                             { "name": "Id", "type": "uuid", "versions": "1+" } ] },
               { "name": "Extra", "type": "int32", "versions": "2+", "taggedVersions": "2+",
                 "tag": 0, "default": "-1" }"#,
        );
        let message = build(Path::new("Test.json"), &json).unwrap();
        assert_eq!(message.structs.len(), 2);
        let extra = &message.root().fields[1];
        assert_eq!(extra.default, Default::Int(-1));
        assert!(extra.regular.is_empty());
        assert_eq!(
            message.root().fields[0].nullable,
            Versions::parse("1-3").unwrap()
        );
    }

    #[test]
    fn unknown_types_are_named() {
        assert_error(
            r#"{ "name": "A", "type": "int128", "versions": "0+" }"#,
            "TestRequest.A: unknown type",
        );
    }

    #[test]
    fn unresolved_structs_are_named() {
        assert_error(
            r#"{ "name": "A", "type": "[]Missing", "versions": "0+" }"#,
            "unresolved struct type Missing",
        );
    }

    #[test]
    fn tags_must_be_unique_and_contiguous() {
        assert_error(
            r#"{ "name": "A", "type": "int8", "versions": "2+", "taggedVersions": "2+", "tag": 0 },
               { "name": "B", "type": "int8", "versions": "2+", "taggedVersions": "2+", "tag": 0 }"#,
            "duplicate tag 0",
        );
        assert_error(
            r#"{ "name": "A", "type": "int8", "versions": "2+", "taggedVersions": "2+", "tag": 1 }"#,
            "not contiguous",
        );
    }

    #[test]
    fn tagged_fields_must_be_flexible() {
        assert_error(
            r#"{ "name": "A", "type": "int8", "versions": "0+", "taggedVersions": "1+", "tag": 0 }"#,
            "only allowed in flexible versions",
        );
    }

    #[test]
    fn nullable_needs_a_nullable_type() {
        assert_error(
            r#"{ "name": "A", "type": "int32", "versions": "0+", "nullableVersions": "0+" }"#,
            "cannot be nullable",
        );
    }

    #[test]
    fn versions_must_meet_the_message() {
        assert_error(
            r#"{ "name": "A", "type": "int32", "versions": "7+" }"#,
            "start after the message's valid versions",
        );
    }

    #[test]
    fn map_key_misuse() {
        assert_error(
            r#"{ "name": "A", "type": "int32", "versions": "0+", "mapKey": true }"#,
            "mapKey is only valid",
        );
        assert_error(
            r#"{ "name": "T", "type": "[]T", "versions": "0+", "fields": [
                 { "name": "K", "type": "bytes", "versions": "0+", "mapKey": true } ] }"#,
            "cannot be a map key",
        );
    }

    #[test]
    fn bad_defaults() {
        assert_error(
            r#"{ "name": "A", "type": "int8", "versions": "0+", "default": "300" }"#,
            "invalid default",
        );
        assert_error(
            r#"{ "name": "A", "type": "string", "versions": "0+", "nullableVersions": "1+", "default": "null" }"#,
            "nullable in all",
        );
    }

    #[test]
    fn defaults_in_every_form() {
        let json = message(
            r#"{ "name": "A", "type": "int32", "versions": "0+", "default": "0x7fffffff" },
               { "name": "B", "type": "bool", "versions": "0+", "default": true },
               { "name": "C", "type": "int64", "versions": "0+", "default": -1 },
               { "name": "D", "type": "string", "versions": "0+", "nullableVersions": "0+", "default": "null" },
               { "name": "E", "type": "uuid", "versions": "0+", "default": "AAAAAAAAAAAAAAAAAAAAAQ" }"#,
        );
        let message = build(Path::new("Test.json"), &json).unwrap();
        let defaults: Vec<_> = message
            .root()
            .fields
            .iter()
            .map(|f| f.default.clone())
            .collect();
        let mut uuid = [0u8; 16];
        uuid[15] = 1;
        assert_eq!(
            defaults,
            vec![
                Default::Int(i32::MAX.into()),
                Default::Bool(true),
                Default::Int(-1),
                Default::Null,
                Default::Uuid(uuid)
            ]
        );
    }

    #[test]
    fn unknown_keys_name_the_file() {
        let errors = errors_of(
            r#"{ "type": "data", "name": "X", "validVersions": "0", "flexibleVersions": "none", "extra": 1 }"#,
        );
        assert!(
            errors[0].starts_with("Test.json: unknown field `extra`"),
            "{errors:?}"
        );
    }
}
