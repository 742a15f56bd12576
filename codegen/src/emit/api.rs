//! The `ApiKey` enum and the `RequestBody`/`ResponseBody` enums, from request and
//! response definitions paired by API key.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::{type_path, version_range};
use crate::model::Message;
use crate::naming::variant_ident;
use crate::spec::SpecKind;

/// API key of `ApiVersions`, whose response header is always version 0 (KIP-511).
const API_VERSIONS_KEY: i16 = 18;
/// API key of `ControlledShutdown`, whose version 0 used request header version 0.
const CONTROLLED_SHUTDOWN_KEY: i16 = 7;

/// A request and its response.
struct Api<'a> {
    key: i16,
    request: &'a Message,
    response: &'a Message,
}

fn apis(messages: &[Message]) -> Vec<Api<'_>> {
    let mut apis: Vec<Api<'_>> = messages
        .iter()
        .filter(|m| m.kind == SpecKind::Request)
        .filter_map(|request| {
            let key = request.api_key?;
            let response = messages
                .iter()
                .find(|m| m.kind == SpecKind::Response && m.api_key == Some(key))?;
            Some(Api {
                key,
                request,
                response,
            })
        })
        .collect();
    apis.sort_by_key(|api| api.key);
    apis
}

/// Emits `ApiKey`, `RequestBody`, `ResponseBody` and the `Request` impls.
pub fn emit(messages: &[Message]) -> TokenStream {
    let apis = apis(messages);
    let variants: Vec<_> = apis
        .iter()
        .map(|a| variant_ident(&a.request.name, "Request"))
        .collect();
    let keys: Vec<_> = apis
        .iter()
        .map(|a| Literal::i16_unsuffixed(a.key))
        .collect();
    let names: Vec<String> = variants.iter().map(ToString::to_string).collect();
    let valid: Vec<_> = apis
        .iter()
        .map(|a| version_range(a.request.valid))
        .collect();
    let flexible: Vec<_> = apis
        .iter()
        .map(|a| version_range(a.request.flexible.intersect(a.request.valid)))
        .collect();
    let unstable: Vec<_> = apis.iter().map(|a| a.request.latest_unstable).collect();
    let listeners: Vec<_> = apis
        .iter()
        .map(|a| {
            let l = &a.request.listeners;
            quote!(&[#(#l),*])
        })
        .collect();
    let request_header: Vec<_> = apis.iter().map(request_header_version).collect();
    let response_header: Vec<_> = apis.iter().map(response_header_version).collect();
    let requests: Vec<_> = apis.iter().map(|a| type_path(a.request)).collect();
    let responses: Vec<_> = apis.iter().map(|a| type_path(a.response)).collect();
    let throttle_arms: Vec<TokenStream> = apis.iter().filter_map(throttle_arm).collect();
    let docs: Vec<String> = apis
        .iter()
        .map(|a| {
            format!(
                " {} (key {}), versions {}.",
                names_of(a),
                a.key,
                a.request.valid
            )
        })
        .collect();

    quote! {
        /// Every API key with a request and a response definition.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[repr(i16)]
        pub enum ApiKey {
            #(#[doc = #docs] #variants = #keys,)*
        }

        impl ApiKey {
            /// Every API key, in key order.
            pub const ALL: &'static [ApiKey] = &[#(ApiKey::#variants),*];

            /// The API key with this number, if it is defined.
            pub const fn from_i16(key: i16) -> Option<ApiKey> {
                match key {
                    #(#keys => Some(ApiKey::#variants),)*
                    _ => None,
                }
            }

            /// The number sent on the wire.
            pub const fn key(self) -> i16 { self as i16 }

            /// The API's name, e.g. `"Metadata"`.
            pub const fn name(self) -> &'static str {
                match self { #(ApiKey::#variants => #names,)* }
            }

            /// The versions the definitions describe.
            pub const fn valid_versions(self) -> VersionRange {
                match self { #(ApiKey::#variants => #valid,)* }
            }

            /// The versions that use compact encodings and tagged fields.
            pub const fn flexible_versions(self) -> VersionRange {
                match self { #(ApiKey::#variants => #flexible,)* }
            }

            /// True when the highest valid version is still unstable upstream.
            pub const fn latest_version_unstable(self) -> bool {
                match self { #(ApiKey::#variants => #unstable,)* }
            }

            /// The listeners that serve this API (`broker`, `controller`, ...).
            pub const fn listeners(self) -> &'static [&'static str] {
                match self { #(ApiKey::#variants => #listeners,)* }
            }

            /// The request header version used with this API version.
            pub const fn request_header_version(self, version: i16) -> i16 {
                match self { #(ApiKey::#variants => #request_header,)* }
            }

            /// The response header version used with this API version.
            pub const fn response_header_version(self, version: i16) -> i16 {
                match self { #(ApiKey::#variants => #response_header,)* }
            }
        }

        impl TryFrom<i16> for ApiKey {
            type Error = i16;
            fn try_from(key: i16) -> Result<Self, i16> { ApiKey::from_i16(key).ok_or(key) }
        }

        #(
            impl Request for #requests {
                const API_KEY: ApiKey = ApiKey::#variants;
                type Response = #responses;
            }
        )*

        /// Any request body, by API key.
        #[derive(Clone, Debug, PartialEq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum RequestBody {
            #(#[doc = #docs] #variants(#requests),)*
        }

        /// Any response body, by API key.
        #[derive(Clone, Debug, PartialEq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum ResponseBody {
            #(#[doc = #docs] #variants(#responses),)*
        }

        impl RequestBody {
            /// Decodes the request body of `api_key` at `version`.
            pub fn decode(api_key: ApiKey, version: i16, buf: &mut Bytes) -> Result<Self, DecodeError> {
                Ok(match api_key {
                    #(ApiKey::#variants => RequestBody::#variants(Decodable::decode(buf, version)?),)*
                })
            }
            /// The API key of this body.
            pub const fn api_key(&self) -> ApiKey {
                match self { #(RequestBody::#variants(_) => ApiKey::#variants,)* }
            }
        }

        impl Encodable for RequestBody {
            fn encode_to<W: WriteBuf>(&self, buf: &mut W, version: i16) -> Result<(), EncodeError> {
                match self { #(RequestBody::#variants(body) => body.encode_to(buf, version),)* }
            }
            fn encoded_len(&self, version: i16) -> usize {
                match self { #(RequestBody::#variants(body) => body.encoded_len(version),)* }
            }
        }

        impl ResponseBody {
            /// Decodes the response body of `api_key` at `version`.
            pub fn decode(api_key: ApiKey, version: i16, buf: &mut Bytes) -> Result<Self, DecodeError> {
                Ok(match api_key {
                    #(ApiKey::#variants => ResponseBody::#variants(Decodable::decode(buf, version)?),)*
                })
            }
            /// The API key of this body.
            pub const fn api_key(&self) -> ApiKey {
                match self { #(ResponseBody::#variants(_) => ApiKey::#variants,)* }
            }
            /// Sets the top-level `throttle_time_ms` (KIP-219) when the response has one at
            /// `version`; false when it has none there.
            pub fn set_throttle_time_ms(&mut self, version: i16, throttle_time_ms: i32) -> bool {
                #[allow(unreachable_patterns)]
                match self {
                    #(#throttle_arms)*
                    _ => false,
                }
            }
        }

        impl Encodable for ResponseBody {
            fn encode_to<W: WriteBuf>(&self, buf: &mut W, version: i16) -> Result<(), EncodeError> {
                match self { #(ResponseBody::#variants(body) => body.encode_to(buf, version),)* }
            }
            fn encoded_len(&self, version: i16) -> usize {
                match self { #(ResponseBody::#variants(body) => body.encoded_len(version),)* }
            }
        }

        #(
            impl From<#requests> for RequestBody {
                fn from(body: #requests) -> Self { RequestBody::#variants(body) }
            }
            impl From<#responses> for ResponseBody {
                fn from(body: #responses) -> Self { ResponseBody::#variants(body) }
            }
        )*
    }
}

/// The `set_throttle_time_ms` arm of a response with a top-level int32 `ThrottleTimeMs`.
fn throttle_arm(api: &Api<'_>) -> Option<TokenStream> {
    let field = api
        .response
        .root()
        .fields
        .iter()
        .find(|f| f.name == "ThrottleTimeMs" && f.ty == crate::model::Type::Int32)?;
    let variant = variant_ident(&api.request.name, "Request");
    let member = super::field_member(field);
    let (low, high) = (
        Literal::i16_unsuffixed(field.versions.lowest),
        Literal::i16_unsuffixed(field.versions.highest),
    );
    Some(quote! {
        ResponseBody::#variant(body) if (#low..=#high).contains(&version) => {
            body.#member = throttle_time_ms;
            true
        }
    })
}

fn names_of(api: &Api<'_>) -> String {
    format!("`{}` / `{}`", api.request.name, api.response.name)
}

fn flexible_from(message: &Message) -> Option<Literal> {
    let flexible = message.flexible.intersect(message.valid);
    (!flexible.is_empty()).then(|| Literal::i16_unsuffixed(flexible.lowest))
}

/// Request header v2 in flexible versions, v1 otherwise; ControlledShutdown v0 used v0.
fn request_header_version(api: &Api<'_>) -> TokenStream {
    let base = match flexible_from(api.request) {
        Some(first) => quote!(if version >= #first { 2 } else { 1 }),
        None => quote!(1),
    };
    if api.key == CONTROLLED_SHUTDOWN_KEY && api.request.valid.contains(0) {
        quote!(if version == 0 { 0 } else { #base })
    } else {
        base
    }
}

/// Response header v1 in flexible versions, v0 otherwise; ApiVersions always uses v0.
fn response_header_version(api: &Api<'_>) -> TokenStream {
    if api.key == API_VERSIONS_KEY {
        return quote!({
            let _ = version;
            0
        });
    }
    match flexible_from(api.response) {
        Some(first) => quote!(if version >= #first { 1 } else { 0 }),
        None => quote!({
            let _ = version;
            0
        }),
    }
}
