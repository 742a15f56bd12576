//! Enums over the record definitions: `MetadataRecord` for the KRaft metadata log, and one
//! key enum and one value enum per coordinator directory (`__consumer_offsets` and friends).

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

use super::type_path;
use crate::model::Message;
use crate::naming::{camel_from_dir, variant_ident};
use crate::spec::SpecKind;

/// Emits the metadata record enum and the coordinator record enums.
pub fn emit(messages: &[Message]) -> TokenStream {
    let mut out = metadata_enum(messages);
    let mut groups: Vec<&str> = messages
        .iter()
        .filter(|m| m.kind == SpecKind::CoordinatorKey)
        .map(|m| m.group.as_str())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    for group in groups {
        out.extend(coordinator_enums(messages, group));
    }
    out
}

fn sorted<'a>(messages: impl Iterator<Item = &'a Message>) -> Vec<&'a Message> {
    let mut list: Vec<&Message> = messages.collect();
    list.sort_by_key(|m| m.api_key);
    list
}

fn metadata_enum(messages: &[Message]) -> TokenStream {
    let records = sorted(messages.iter().filter(|m| m.kind == SpecKind::Metadata));
    let variants: Vec<Ident> = records
        .iter()
        .map(|m| variant_ident(&m.name, "Record"))
        .collect();
    let types: Vec<TokenStream> = records.iter().map(|m| type_path(m)).collect();
    let keys: Vec<Literal> = records
        .iter()
        .map(|m| Literal::i16_unsuffixed(m.api_key.unwrap_or_default()))
        .collect();
    let docs: Vec<String> = records
        .iter()
        .map(|m| {
            format!(
                " `{}` (type {}), versions {}.",
                m.name,
                m.api_key.unwrap_or_default(),
                m.valid
            )
        })
        .collect();
    quote! {
        /// Any KRaft metadata record, by record type.
        #[derive(Clone, Debug, PartialEq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum MetadataRecord {
            #(#[doc = #docs] #variants(#types),)*
        }

        impl MetadataRecord {
            /// The record type number (the definition's `apiKey`).
            pub const fn record_type(&self) -> i16 {
                match self { #(MetadataRecord::#variants(_) => #keys,)* }
            }

            /// Decodes the body of a record of `record_type` at `version`.
            pub fn decode_body(record_type: i16, version: i16, buf: &mut Bytes) -> Result<Self, DecodeError> {
                Ok(match record_type {
                    #(#keys => MetadataRecord::#variants(Decodable::decode(buf, version)?),)*
                    other => return Err(DecodeError::unknown_record_type(other)),
                })
            }

            /// Encodes the body (without the frame) at `version`.
            pub fn encode_body<W: WriteBuf>(&self, buf: &mut W, version: i16) -> Result<(), EncodeError> {
                match self { #(MetadataRecord::#variants(record) => record.encode_to(buf, version),)* }
            }

            /// The size of the body (without the frame) at `version`.
            pub fn body_len(&self, version: i16) -> usize {
                match self { #(MetadataRecord::#variants(record) => record.encoded_len(version),)* }
            }
        }

        #(
            impl From<#types> for MetadataRecord {
                fn from(record: #types) -> Self { MetadataRecord::#variants(record) }
            }
        )*
    }
}

fn coordinator_enums(messages: &[Message], group: &str) -> TokenStream {
    let in_group = |kind: SpecKind| {
        sorted(
            messages
                .iter()
                .filter(move |m| m.kind == kind && m.group == group),
        )
    };
    let keys = in_group(SpecKind::CoordinatorKey);
    let values = in_group(SpecKind::CoordinatorValue);
    let prefix = camel_from_dir(group);
    let key_enum = format_ident!("{prefix}RecordKey");
    let value_enum = format_ident!("{prefix}RecordValue");
    let key_doc = format!(" A record key of the `{group}` definitions, by record type.");
    let value_doc = format!(" A record value of the `{group}` definitions, by record type.");

    let key_variants: Vec<Ident> = keys.iter().map(|m| variant_ident(&m.name, "Key")).collect();
    let key_types: Vec<TokenStream> = keys.iter().map(|m| type_path(m)).collect();
    let key_numbers: Vec<Literal> = keys
        .iter()
        .map(|m| Literal::i16_unsuffixed(m.api_key.unwrap_or_default()))
        .collect();
    // A key is written at its record type but its schema has one version: read it at that.
    let key_versions: Vec<Literal> = keys
        .iter()
        .map(|m| Literal::i16_unsuffixed(m.valid.lowest))
        .collect();

    let value_variants: Vec<Ident> = values
        .iter()
        .map(|m| variant_ident(&m.name, "Value"))
        .collect();
    let value_types: Vec<TokenStream> = values.iter().map(|m| type_path(m)).collect();
    let value_numbers: Vec<Literal> = values
        .iter()
        .map(|m| Literal::i16_unsuffixed(m.api_key.unwrap_or_default()))
        .collect();

    quote! {
        #[doc = #key_doc]
        #[derive(Clone, Debug, PartialEq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum #key_enum {
            #(#[doc = concat!(" `", stringify!(#key_variants), "` key.")] #key_variants(#key_types),)*
        }

        impl #key_enum {
            /// The record type number (the definition's `apiKey`).
            pub const fn record_type(&self) -> i16 {
                match self { #(#key_enum::#key_variants(_) => #key_numbers,)* }
            }

            /// Decodes a key: an int16 record type, then the key at its schema version.
            pub fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
                let record_type = codec::read_i16(buf).map_err(|e| e.at(#prefix))?;
                Ok(match record_type {
                    #(#key_numbers => #key_enum::#key_variants(Decodable::decode(buf, #key_versions)?),)*
                    other => return Err(DecodeError::unknown_record_type(other)),
                })
            }

            /// Encodes the record type and the key.
            pub fn encode<W: WriteBuf>(&self, buf: &mut W) -> Result<(), EncodeError> {
                codec::write_i16(buf, self.record_type());
                match self { #(#key_enum::#key_variants(key) => key.encode_to(buf, #key_versions),)* }
            }

            /// The size `encode` writes.
            pub fn encoded_len(&self) -> usize {
                2 + match self { #(#key_enum::#key_variants(key) => key.encoded_len(#key_versions),)* }
            }
        }

        #[doc = #value_doc]
        #[derive(Clone, Debug, PartialEq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum #value_enum {
            #(#[doc = concat!(" `", stringify!(#value_variants), "` value.")] #value_variants(#value_types),)*
        }

        impl #value_enum {
            /// The record type number (the definition's `apiKey`).
            pub const fn record_type(&self) -> i16 {
                match self { #(#value_enum::#value_variants(_) => #value_numbers,)* }
            }

            /// Decodes a value of `record_type`: an int16 version, then the value at it.
            /// Returns the value and its version.
            pub fn decode(record_type: i16, buf: &mut Bytes) -> Result<(Self, i16), DecodeError> {
                let version = codec::read_i16(buf).map_err(|e| e.at(#prefix))?;
                Ok((match record_type {
                    #(#value_numbers => #value_enum::#value_variants(Decodable::decode(buf, version)?),)*
                    other => return Err(DecodeError::unknown_record_type(other)),
                }, version))
            }

            /// Encodes the version and the value at it.
            pub fn encode<W: WriteBuf>(&self, buf: &mut W, version: i16) -> Result<(), EncodeError> {
                codec::write_i16(buf, version);
                match self { #(#value_enum::#value_variants(value) => value.encode_to(buf, version),)* }
            }

            /// The size `encode` writes at `version`.
            pub fn encoded_len(&self, version: i16) -> usize {
                2 + match self { #(#value_enum::#value_variants(value) => value.encoded_len(version),)* }
            }
        }
    }
}
